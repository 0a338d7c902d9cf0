#!/usr/bin/env bash
# The client side of a step-ca compatible authority, done with smallstep's own client code
# (stepca-tool, built by scripts/stepca-peer on the library the `step` CLI uses), the same
# against step-ca 0.19 and against `keystation authority serve` (tests/authority_stepca.rs
# runs it against both). Each outcome is checked: certificates with openssl and ssh-keygen,
# refusals by the status in the CA's error JSON.
#
#   STEPPATH=DIR STEPCA_TOOL=… STEPCA_PASSWORD_FILE=… STEPCA_WORK=… [STRICT=1] \
#     tests/authority/stepca-client.sh
#
#   STEPPATH               the running CA's state directory: config/defaults.json ("ca-url",
#                          "root", "fingerprint"), certs/intermediate_ca.crt; the CA must
#                          have SSH enabled (step: init --ssh)
#   STEPCA_TOOL            the stepca-tool binary
#   STEPCA_PASSWORD_FILE   the password of the JWK provisioner's encryptedKey
#   STEPCA_WORK            an empty scratch directory
#   STEPCA_PROVISIONER     the JWK provisioner's name (default admin)
#   STRICT=1               expect keystation's stricter checks where step-ca 0.19 is lax
#                          (the research note's §7; default: step-ca's behaviour):
#
#     check                                     step-ca 0.19        STRICT=1
#     SSH token (aud …/ssh/sign) on /1.0/sign   certificate issued  401
#     token lifetime 2 h                        accepted            401
#     renew bearer token with a wrong aud       500                 401
#     token of a refused SSH request (403)      spent (then 401)    not spent (reusable)
#
# One line per check ("ok   …"); the first failure prints "FAIL …" on stderr and exits 1.
# Needs openssl, ssh-keygen, curl, python3.
source "$(dirname "$0")/common.sh"
strict=${STRICT:-0}
cd "$work"

# split_chain FILE PREFIX: PREFIX-0.crt, PREFIX-1.crt, … one PEM certificate each; prints
# the count.
split_chain() {
  awk -v prefix="$2" '
    /-----BEGIN CERTIFICATE-----/ { file = sprintf("%s-%d.crt", prefix, n++) }
    file { print > file }
    /-----END CERTIFICATE-----/ { close(file); file = "" }
    END { print n }' "$1"
}

# der FILE: the certificate's DER as hex, for comparing certificates.
der() { openssl x509 -in "$1" -outform DER | od -An -tx1 | tr -d ' \n'; }
# spki FILE: the certificate's (or, with -key, the private key's) public key, PEM.
spki() { openssl x509 -in "$1" -noout -pubkey; }
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
sans() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' '; }

# check_leaf CRT KEY CN SANS WHAT: CRT is the leaf then the intermediate; the chain
# verifies to the root; subject CN, SANs (openssl's text, comma-separated) and the key
# match; EKU serverAuth+clientAuth; step-ca's default lifetime, 24 h (+ the 1 min backdate).
check_leaf() {
  local crt=$1 key=$2 cn=$3 want_sans=$4 what=$5 count
  count=$(split_chain "$crt" "$crt.part")
  [[ $count == 2 ]] || fail "$what: $crt holds $count certificates, expected the leaf and the intermediate"
  [[ $(der "$crt.part-1.crt") == "$(der "$intermediate")" ]] \
    || fail "$what: the second certificate of $crt is not $intermediate"
  openssl verify -CAfile "$root" -untrusted "$intermediate" "$crt.part-0.crt" >"$work/verify.out" 2>&1 \
    || fail "$what: openssl verify: $(cat "$work/verify.out")"
  local subject
  subject=$(openssl x509 -in "$crt" -noout -subject -nameopt RFC2253)
  [[ $subject == "subject=CN=$cn" ]] || fail "$what: subject '$subject', expected CN=$cn"
  [[ $(sans "$crt") == "$want_sans" ]] || fail "$what: SANs '$(sans "$crt")', expected '$want_sans'"
  [[ $(openssl pkey -in "$key" -pubout) == "$(spki "$crt")" ]] || fail "$what: $key is not the certificate's key"
  local eku
  eku=$(openssl x509 -in "$crt" -noout -ext extendedKeyUsage | tail -n +2 | sed 's/^ *//')
  [[ $eku == "TLS Web Server Authentication, TLS Web Client Authentication" ]] \
    || fail "$what: extended key usage '$eku', expected serverAuth and clientAuth"
  local life=$(($(not_after "$crt") - $(not_before "$crt")))
  ((life >= 24 * 3600 && life <= 24 * 3600 + 120)) \
    || fail "$what: lifetime ${life}s, expected 24 h (and at most 2 min of backdating)"
}

# ---- discovery ------------------------------------------------------------------------

tool provisioners >provisioners.txt 2>provisioners.err || fail "provisioners: $(cat provisioners.err)"
grep -qxF "$provisioner"$'\tJWK\tencryptedKey=true' provisioners.txt \
  || fail "provisioners: no '$provisioner JWK encryptedKey=true' line in: $(cat provisioners.txt)"
ok "provisioners lists $provisioner as JWK with encryptedKey=true"

fp=$(fingerprint "$root")
want_fp=$(json "$defaults" fingerprint)
[[ -z $want_fp || $want_fp == "$fp" ]] || fail "defaults.json: fingerprint $want_fp is not the root's, $fp"

# ---- X.509: token and certificate -----------------------------------------------------

token=$(tool token --password-file "$pass" --san localhost --san 127.0.0.1 localhost) \
  || fail "token: stepca-tool token failed"
tool inspect "$token" >token.json
curl -sSf --cacert "$root" "$ca_url/1.0/provisioners" >provisioners.json || fail "GET /1.0/provisioners failed"
kid=$(python3 -c 'import json, sys
for p in json.load(open(sys.argv[1]))["provisioners"]:
    if p.get("name") == sys.argv[2] and p.get("type") == "JWK":
        print(p["key"]["kid"])' provisioners.json "$provisioner")
[[ -n $kid && $(json token.json header.kid) == "$kid" ]] \
  || fail "token: kid '$(json token.json header.kid)' is not the $provisioner key's ('$kid')"
[[ $(json token.json header.alg) == ES256 ]] || fail "token: alg $(json token.json header.alg)"
[[ $(json token.json payload.aud) == "$ca_url/1.0/sign" ]] || fail "token: aud $(json token.json payload.aud)"
[[ $(json token.json payload.iss) == "$provisioner" ]] || fail "token: iss $(json token.json payload.iss)"
[[ $(json token.json payload.sha) == "$fp" ]] || fail "token: sha is not the root's fingerprint"
[[ $(json token.json payload.sans | paste -sd,) == "localhost,127.0.0.1" ]] || fail "token: sans"
ok "token: kid $(json token.json header.kid), aud $ca_url/1.0/sign, sha = root fingerprint"

tool certificate --token "$token" localhost leaf.crt leaf.key 2>err.txt \
  || fail "certificate with a token: $(cat err.txt)"
check_leaf leaf.crt leaf.key localhost "DNS:localhost,IPAddress:127.0.0.1" "certificate with a token"
ok "certificate with a token: chain verifies (openssl verify), CN and SANs localhost + 127.0.0.1, 24 h"

refused 401 "the same token again (replay)" tool certificate --token "$token" localhost replay.crt replay.key

tool certificate --password-file "$pass" client1 c1.crt c1.key 2>err.txt \
  || fail "certificate with its own token: $(cat err.txt)"
check_leaf c1.crt c1.key client1 "DNS:client1" "certificate with its own token"
ok "certificate with its own token (provisioner key decrypted from encryptedKey): client1 verifies"

# ---- renew ----------------------------------------------------------------------------

tool renew c1.crt c1.key c1-renewed.crt 2>err.txt || fail "renew over mTLS: $(cat err.txt)"
check_leaf c1-renewed.crt c1.key client1 "DNS:client1" "renew over mTLS"
[[ $(serial c1-renewed.crt) != "$(serial c1.crt)" ]] || fail "renew over mTLS: the serial did not change"
ok "renew over mTLS: new serial $(serial c1-renewed.crt), same key, verifies"

tool renew --mtls=false c1-renewed.crt c1.key c1-bearer.crt 2>err.txt \
  || fail "renew with --mtls=false: $(cat err.txt)"
check_leaf c1-bearer.crt c1.key client1 "DNS:client1" "renew with --mtls=false"
[[ $(serial c1-bearer.crt) != "$(serial c1-renewed.crt)" ]] || fail "renew with --mtls=false: the serial did not change"
ok "renew with --mtls=false (x5cInsecure bearer token): new serial, same key, verifies"

if [[ $strict == 1 ]]; then
  refused 401 "renew bearer token with aud /1.0/sign" tool renew --mtls=false --audience /1.0/sign c1-bearer.crt c1.key x.crt
else
  refused 500 "renew bearer token with aud /1.0/sign (step-ca 0.19: 500)" \
    tool renew --mtls=false --audience /1.0/sign c1-bearer.crt c1.key x.crt
fi

# ---- revoke ---------------------------------------------------------------------------

c1_serial=0x$(serial c1.crt)
[[ $(tool revoke --password-file "$pass" "$c1_serial" 2>err.txt) == ok ]] \
  || fail "revoke by serial (token made from the password): $(cat err.txt)"
ok "revoke $c1_serial with a token made from the provisioner password"
refused 401 "renew of the revoked certificate" tool renew c1.crt c1.key x.crt
refused 400 "revoke of the revoked certificate again" tool revoke --password-file "$pass" "$c1_serial"

tool certificate --password-file "$pass" client2 c2.crt c2.key 2>err.txt || fail "certificate client2: $(cat err.txt)"
c2_serial=0x$(serial c2.crt)
revoke_token=$(tool token --revoke --password-file "$pass" "$c2_serial") || fail "token --revoke failed"
tool inspect "$revoke_token" >revoke-token.json
[[ $(json revoke-token.json payload.aud) == "$ca_url/1.0/revoke" ]] || fail "revoke token: aud $(json revoke-token.json payload.aud)"
[[ $(tool revoke --token "$revoke_token" "$c2_serial" 2>err.txt) == ok ]] \
  || fail "revoke with a revocation token: $(cat err.txt)"
ok "revoke $c2_serial with a revocation token (aud $ca_url/1.0/revoke)"

tool certificate --password-file "$pass" client3 c3.crt c3.key 2>err.txt || fail "certificate client3: $(cat err.txt)"
refused 400 "revoke over mTLS of a serial that is not the client certificate's" \
  tool revoke --cert c3.crt --key c3.key 12345
[[ $(tool revoke --cert leaf.crt --key leaf.key 2>err.txt) == ok ]] || fail "revoke over mTLS: $(cat err.txt)"
ok "revoke over mTLS (the certificate revokes itself)"
refused 401 "renew of the certificate revoked over mTLS" tool renew leaf.crt leaf.key x.crt
refused 400 "revoke over mTLS again" tool revoke --cert leaf.crt --key leaf.key

# ---- SSH ------------------------------------------------------------------------------

ssh_roots userKey user-ca.pub
ssh_roots hostKey host-ca.pub
user_ca=$(ssh_fingerprint user-ca.pub)
host_ca=$(ssh_fingerprint host-ca.pub)
[[ $user_ca != "$host_ca" ]] || fail "GET /1.0/ssh/roots: the user and host CA keys are the same"
ok "GET /1.0/ssh/roots: user CA $user_ca, host CA $host_ca"

# check_ssh CERT TYPE CA_FP PRINCIPALS(comma) MIN_SECONDS WHAT: ssh-keygen -L's view.
check_ssh() {
  local cert=$1 type=$2 ca=$3 principals=$4 lifetime=$5 what=$6
  ssh-keygen -L -f "$cert" >"$cert.txt" 2>&1 || fail "$what: ssh-keygen -L: $(cat "$cert.txt")"
  grep -q "^ *Type: .* $type certificate$" "$cert.txt" || fail "$what: not a $type certificate: $(cat "$cert.txt")"
  grep -q "^ *Signing CA: .* $ca " "$cert.txt" || fail "$what: not signed by $ca: $(cat "$cert.txt")"
  local got
  got=$(sed -n '/^ *Principals:/,/^ *Critical Options:/p' "$cert.txt" | sed '1d;$d' | tr -d ' \t' | paste -sd,)
  [[ $got == "$principals" ]] || fail "$what: principals '$got', expected '$principals'"
  local from to
  read -r from to < <(sed -n 's/^ *Valid: from \(.*\) to \(.*\)$/\1 \2/p' "$cert.txt")
  local life=$(($(date -d "$to" +%s) - $(date -d "$from" +%s)))
  ((life >= lifetime && life <= lifetime + 120)) \
    || fail "$what: valid ${life}s ($from to $to), expected ${lifetime}s (and at most 2 min of backdating)"
}

tool ssh-certificate --password-file "$pass" alice@example.test id_alice 2>err.txt \
  || fail "SSH user certificate: $(cat err.txt)"
check_ssh id_alice-cert.pub user "$user_ca" "alice,alice@example.test" $((16 * 3600)) "SSH user certificate"
for extension in permit-X11-forwarding permit-agent-forwarding permit-port-forwarding permit-pty permit-user-rc; do
  grep -qx " *$extension" id_alice-cert.pub.txt || fail "SSH user certificate: no $extension extension"
done
ok "SSH user certificate: principals alice + alice@example.test, user CA, 16 h, the five permit-* extensions"

tool ssh-certificate --host --kty ecdsa --password-file "$pass" host1.example.test id_host 2>err.txt \
  || fail "SSH host certificate: $(cat err.txt)"
check_ssh id_host-cert.pub host "$host_ca" "host1.example.test" $((30 * 24 * 3600)) "SSH host certificate"
grep -q '^ *Extensions: (none)$' id_host-cert.pub.txt || fail "SSH host certificate: has extensions"
ok "SSH host certificate (ECDSA key): principal host1.example.test, host CA, 30 days, no extensions"

ssh_token=$(tool ssh-token --password-file "$pass" --principal alice alice) || fail "ssh-token failed"
tool inspect "$ssh_token" >ssh-token.json
[[ $(json ssh-token.json payload.aud) == "$ca_url/1.0/ssh/sign" ]] || fail "ssh-token: aud $(json ssh-token.json payload.aud)"
tool ssh-certificate --token "$ssh_token" --principal alice alice id_a2 2>err.txt \
  || fail "SSH certificate with an ssh-token: $(cat err.txt)"
check_ssh id_a2-cert.pub user "$user_ca" "alice" $((16 * 3600)) "SSH certificate with an ssh-token"
ok "ssh-token + ssh-certificate, matching principal alice: issued"

ssh_token=$(tool ssh-token --password-file "$pass" --principal alice alice) || fail "ssh-token failed"
refused 403 "ssh-certificate with a token for alice asking for bob" \
  tool ssh-certificate --token "$ssh_token" --principal bob alice id_bob
if [[ $strict == 1 ]]; then
  tool ssh-certificate --token "$ssh_token" --principal alice alice id_a3 2>err.txt \
    || fail "the token of the refused request (403) was spent: $(cat err.txt)"
  ok "the token of the refused request was not spent: with principal alice it is accepted"
else
  refused 401 "the token of the refused request (403) again (step-ca 0.19 spent it)" \
    tool ssh-certificate --token "$ssh_token" --principal alice alice id_a3
fi

x509_token=$(tool token --password-file "$pass" alice) || fail "token failed"
refused 401 "an X.509 token on /1.0/ssh/sign" tool ssh-certificate --token "$x509_token" --principal alice alice id_x

# ---- negative tokens ------------------------------------------------------------------

t=$(tool token --password-file "$pass" --audience /1.0/revoke localhost) || fail "token failed"
refused 401 "token with aud /1.0/revoke on /1.0/sign" tool certificate --token "$t" localhost x.crt x.key
t=$(tool token --password-file "$pass" --not-before -10m --not-after -5m localhost) || fail "token failed"
refused 401 "expired token (exp 5 min ago)" tool certificate --token "$t" localhost x.crt x.key
t=$(tool token --password-file "$pass" --not-before 10m --not-after 15m localhost) || fail "token failed"
refused 401 "token not yet valid (nbf in 10 min)" tool certificate --token "$t" localhost x.crt x.key

t=$(tool ssh-token --password-file "$pass" --principal alice alice) || fail "ssh-token failed"
if [[ $strict == 1 ]]; then
  refused 401 "SSH token (aud /1.0/ssh/sign) on /1.0/sign" tool certificate --token "$t" alice x.crt x.key
else
  tool certificate --token "$t" alice ssh-on-sign.crt ssh-on-sign.key 2>err.txt \
    || fail "SSH token on /1.0/sign: step-ca 0.19 accepts it, this CA refused: $(cat err.txt)"
  ok "SSH token (aud /1.0/ssh/sign) on /1.0/sign: accepted (step-ca 0.19's laxity)"
fi

t=$(tool token --password-file "$pass" --not-after 2h localhost) || fail "token failed"
if [[ $strict == 1 ]]; then
  refused 401 "token lasting 2 h" tool certificate --token "$t" localhost x.crt x.key
else
  tool certificate --token "$t" localhost long.crt long.key 2>err.txt \
    || fail "token lasting 2 h: step-ca 0.19 accepts it, this CA refused: $(cat err.txt)"
  ok "token lasting 2 h: accepted (step-ca 0.19 does not cap the lifetime)"
fi

ok "all client checks passed (STRICT=$strict)"
