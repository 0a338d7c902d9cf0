#!/usr/bin/env bash
# A real OpenSSH login with certificates from a step-ca compatible authority: a private
# sshd (Debian's openssh-server) on a free loopback port trusts the CA's SSH user CA key
# (TrustedUserCAKeys, fetched from GET /1.0/ssh/roots) and presents a host certificate the
# CA issued; `ssh` trusts the host CA key (@cert-authority in its known_hosts, strict host
# key checking) and logs in with a user certificate issued by stepca-tool. Run by
# tests/authority_stepca.rs against step-ca 0.19 and against `keystation authority serve`.
#
#   STEPPATH=DIR STEPCA_TOOL=… STEPCA_PASSWORD_FILE=… STEPCA_WORK=… tests/authority/sshd-login.sh
#
# The variables are those of tests/authority/stepca-client.sh (see tests/authority/common.sh).
# sshd logs in the user running this script (root in CI: PermitRootLogin
# prohibit-password) whose principal, through AuthorizedPrincipalsFile, is "alice"; no
# account is created. As root, sshd needs its privilege separation directory /run/sshd,
# created here when missing. sshd is stopped by its PID on exit.
#
# Checks: the login with alice's certificate succeeds, by certificate (sshd's log names the
# certificate's key id and the CA); a certificate for another principal, the bare key
# without its certificate, and a host the client does not trust are each refused.
source "$(dirname "$0")/common.sh"
cd "$work"

sshd=${KEYSTATION_TEST_SSHD:-/usr/sbin/sshd}
[[ -x $sshd ]] || fail "setup: $sshd is missing (Debian: openssh-server)"
command -v ssh >/dev/null || fail "setup: ssh is missing (Debian: openssh-client)"
user=$(id -un)

ssh_roots userKey user-ca.pub
ssh_roots hostKey host-ca.pub
if [[ -r $STEPPATH/certs/ssh_user_ca_key.pub ]]; then
  [[ $(ssh_fingerprint user-ca.pub) == "$(ssh_fingerprint "$STEPPATH/certs/ssh_user_ca_key.pub")" ]] \
    || fail "GET /1.0/ssh/roots: userKey is not $STEPPATH/certs/ssh_user_ca_key.pub"
fi
ok "SSH user CA from GET /1.0/ssh/roots: $(ssh_fingerprint user-ca.pub)"

# The host key and its certificate, for the name the client connects to.
tool ssh-certificate --host --kty ecdsa --password-file "$pass" 127.0.0.1 host_key 2>err.txt \
  || fail "SSH host certificate for 127.0.0.1: $(cat err.txt)"
ok "SSH host certificate for 127.0.0.1 (sshd's HostKey and HostCertificate)"

tool ssh-certificate --password-file "$pass" --principal alice alice id_alice 2>err.txt \
  || fail "SSH user certificate for alice: $(cat err.txt)"
tool ssh-certificate --password-file "$pass" --principal mallory mallory id_mallory 2>err.txt \
  || fail "SSH user certificate for mallory: $(cat err.txt)"
ok "SSH user certificates for principals alice and mallory"

echo alice >principals
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >sshd_config <<EOF
ListenAddress 127.0.0.1:$port
HostKey $work/host_key
HostCertificate $work/host_key-cert.pub
PidFile $work/sshd.pid
TrustedUserCAKeys $work/user-ca.pub
AuthorizedPrincipalsFile $work/principals
AuthorizedKeysFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
LogLevel VERBOSE
EOF
if [[ $(id -u) -eq 0 && ! -d /run/sshd ]]; then
  mkdir -p /run/sshd && chmod 0755 /run/sshd
fi
"$sshd" -t -f "$work/sshd_config" 2>sshd-t.err || fail "sshd -t: $(cat sshd-t.err)"

sshd_pid=
stop_sshd() {
  if [[ -n $sshd_pid ]]; then
    kill -TERM "$sshd_pid" 2>/dev/null || true
    wait "$sshd_pid" 2>/dev/null || true
    sshd_pid=
  fi
}
trap stop_sshd EXIT
"$sshd" -D -e -f "$work/sshd_config" 2>sshd.log &
sshd_pid=$!
for _ in $(seq 100); do
  (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$sshd_pid" 2>/dev/null || fail "sshd exited: $(cat sshd.log)"
  sleep 0.05
done
ok "sshd (PID $sshd_pid) on 127.0.0.1:$port"

echo "@cert-authority * $(cat host-ca.pub)" >known_hosts
echo "@cert-authority * $(cat user-ca.pub)" >known_hosts_wrong_ca
# login ID KNOWN_HOSTS [CERTIFICATE]: ssh as $user, only the given key and certificate.
login() {
  local certificate=(-o CertificateFile=none)
  [[ -z ${3:-} ]] || certificate=(-o "CertificateFile=$3")
  ssh -F /dev/null -i "$1" "${certificate[@]}" -o IdentitiesOnly=yes -o IdentityAgent=none \
    -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$2" \
    -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -p "$port" "$user@127.0.0.1" \
    'echo logged-in-as-$(id -un)'
}

out=$(login id_alice known_hosts id_alice-cert.pub 2>ssh.err) \
  || fail "ssh login with alice's certificate: $(cat ssh.err); sshd: $(tail -n 20 sshd.log)"
[[ $out == "logged-in-as-$user" ]] || fail "ssh login with alice's certificate printed '$out'"
grep -q "Accepted publickey for $user .*ID alice (serial [0-9]*) CA " sshd.log \
  || fail "sshd did not log a certificate login by key id alice: $(tail -n 20 sshd.log)"
ok "ssh $user@127.0.0.1 with alice's user certificate (host certificate checked): logged in"

login id_mallory known_hosts id_mallory-cert.pub >/dev/null 2>ssh.err \
  && fail "ssh login with mallory's certificate (principal not authorized) succeeded"
ok "ssh with a certificate for principal mallory: refused"
login id_alice known_hosts >/dev/null 2>ssh.err && fail "ssh login with alice's bare key (no certificate) succeeded"
ok "ssh with the bare key, no certificate: refused"
login id_alice known_hosts_wrong_ca id_alice-cert.pub >/dev/null 2>ssh.err \
  && fail "ssh accepted the host with the user CA as host CA"
grep -qi 'host key verification failed' ssh.err || fail "ssh with a wrong host CA: $(cat ssh.err)"
ok "ssh trusting another host CA: host key verification failed"

stop_sshd
ok "sshd stopped; all sshd checks passed"
