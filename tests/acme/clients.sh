#!/usr/bin/env bash
# Real ACME clients (RFC 8555) against one ACME server: lego and certbot obtain, renew and
# revoke certificates through http-01 (standalone), dns-01 (TXT records set on a loopback
# DNS server, pebble-challtestsrv) and tls-alpn-01 (RFC 8737; lego only). The same script
# runs against Debian's pebble and against `keystation authority serve`
# (tests/acme_clients.rs runs it against both); only the environment differs.
#
#   ACME_DIRECTORY=https://localhost:14000/dir ACME_CA_BUNDLE=… ACME_DNS_SERVER=127.0.0.1:8053 \
#   ACME_DNS_MANAGEMENT=http://127.0.0.1:8055 ACME_HTTP01_PORT=5002 ACME_TLSALPN01_PORT=5001 \
#   ACME_WORK=DIR ACME_CERTBOTS="/usr/bin/certbot target/certbot-venv/bin/certbot" \
#     tests/acme/clients.sh
#
#   ACME_DIRECTORY        the server's directory URL (RFC 8555 §7.1.1)
#   ACME_CA_BUNDLE        PEM certificates that sign the server's own TLS certificate AND
#                         are the root of the chains it issues (one file; for pebble, its
#                         TLS CA plus the root from its management endpoint /roots/0)
#   ACME_DNS_SERVER       host:port of the DNS server the ACME server resolves with
#                         (pebble-challtestsrv, which answers A 127.0.0.1 for every name)
#   ACME_DNS_MANAGEMENT   that server's management URL (its /set-txt and /clear-txt)
#   ACME_HTTP01_PORT      the port on 127.0.0.1 the server fetches http-01 responses from
#   ACME_TLSALPN01_PORT   the port on 127.0.0.1 it makes tls-alpn-01 handshakes with
#   ACME_WORK             an empty scratch directory
#   ACME_CERTBOTS         the certbot executables to run, space-separated (Debian's
#                         /usr/bin/certbot and PyPI's), each with the same checks
# Optional:
#   ACME_CERT_STATUS_URL  a URL base whose /cert-status-by-serial/<serial> reports a
#                         certificate's status (pebble's management interface); each
#                         revocation is then confirmed there too
#   ACME_CHAIN_LENGTH     certificates in a full chain (default 2: leaf and intermediate)
#   ACME_RUN              a DNS label that makes this run's names distinct (default r<pid>)
#   LEGO, NGINX           the binaries (default: lego on PATH, /usr/sbin/nginx)
#   ACME_EAB_KEYS         a file of external account binding keys (RFC 8555 §7.3.4), one
#                         "KEY_ID HMAC_KEY" (base64url) a line, at least 8: the server must
#                         require a binding. The directory must say so, a binding with the
#                         wrong HMAC key must be refused, and every account the clients make
#                         binds the next key (lego's --eab --kid --hmac, certbot's --eab-kid
#                         --eab-hmac-key). `$ACME_WORK/eab` records "KEY_ID client name" for
#                         each key an account was bound with.
#   ACME_EAB_SINGLE_USE=1 the server binds a key to one account (keystation, step-ca; pebble
#                         does not): a second account with a used key must be refused
#
# Every issued certificate must verify with `openssl verify` to the bundle through the
# issuer chain the client was given, be for TLS servers and name exactly the requested DNS
# name; its key must be the client's; a renewal must bring a new serial. nginx serves one
# issued chain, and curl and `openssl s_client` must accept it. The script records, in
# ACME_WORK, every issued certificate (`issued`: "serial name client") and every
# revocation (`revoked`: "serial reason-code how", how = account or certificate-key), the
# serials lowercase hex without leading zeros; the test checks the server's store with them.
#
# One line per step ("==> …") and per check ("ok   …"); the first failure prints "FAIL …"
# and the tail of the failing command's log on stderr, and exits 1. Needs openssl, curl,
# python3, lego, certbot, nginx.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
hook=$here/dns-hook.sh

step() { printf '==> %s\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
fail() {
  printf 'FAIL %s\n' "$*" >&2
  exit 1
}

for var in ACME_DIRECTORY ACME_CA_BUNDLE ACME_DNS_SERVER ACME_DNS_MANAGEMENT ACME_HTTP01_PORT \
  ACME_TLSALPN01_PORT ACME_WORK ACME_CERTBOTS; do
  [[ -n ${!var:-} ]] || fail "setup: $var is not set (see the header of $0)"
done
[[ $ACME_DIRECTORY == https://* ]] || fail "setup: ACME_DIRECTORY=$ACME_DIRECTORY is not an https URL"
[[ -r $ACME_CA_BUNDLE ]] || fail "setup: ACME_CA_BUNDLE=$ACME_CA_BUNDLE is not readable"
[[ -d $ACME_WORK ]] || fail "setup: ACME_WORK=$ACME_WORK is not a directory"
[[ $ACME_HTTP01_PORT =~ ^[0-9]+$ && $ACME_TLSALPN01_PORT =~ ^[0-9]+$ ]] \
  || fail "setup: ACME_HTTP01_PORT and ACME_TLSALPN01_PORT must be port numbers"
lego=${LEGO:-lego}
nginx=${NGINX:-/usr/sbin/nginx}
read -r -a certbots <<<"$ACME_CERTBOTS"
for tool in openssl curl python3 "$lego"; do
  command -v "$tool" >/dev/null || fail "setup: $tool is required (Debian: openssl curl python3 lego)"
done
[[ -x $nginx ]] || fail "setup: $nginx is not an executable (Debian: nginx)"
for certbot in "${certbots[@]}"; do
  [[ -x $certbot ]] || fail "setup: certbot $certbot is not an executable"
done
[[ -x $hook ]] || fail "setup: $hook is not an executable"
if [[ -n ${ACME_EAB_KEYS:-} ]]; then
  [[ -r $ACME_EAB_KEYS ]] || fail "setup: ACME_EAB_KEYS=$ACME_EAB_KEYS is not readable"
  (($(grep -c . "$ACME_EAB_KEYS") >= 8)) || fail "setup: ACME_EAB_KEYS holds fewer than 8 keys"
fi
# certbot looks the hook command's first word up as a file, without shell quoting.
[[ $hook != *[[:space:]]* ]] || fail "setup: certbot's hooks cannot run $hook: its path has a space"

directory=$ACME_DIRECTORY
bundle=$(cd "$(dirname "$ACME_CA_BUNDLE")" && pwd)/$(basename "$ACME_CA_BUNDLE")
work=$(cd "$ACME_WORK" && pwd)
chain_length=${ACME_CHAIN_LENGTH:-2}
run=${ACME_RUN:-r$$}
export ACME_DNS_MANAGEMENT ACME_WORK="$work"
# Both clients trust the server's TLS certificate through these: lego reads
# LEGO_CA_CERTIFICATES, certbot (python-requests) REQUESTS_CA_BUNDLE.
export LEGO_CA_CERTIFICATES=$bundle REQUESTS_CA_BUNDLE=$bundle
: >"$work/issued"
: >"$work/revoked"
: >"$work/eab"
mkdir -p "$work/logs"

# ---- helpers ----------------------------------------------------------------------------

# new_log WHAT COMMAND...: sets `log` (the caller's local) to a new numbered log file
# named after WHAT, which starts with the command line.
log_count=0
new_log() {
  local what=$1
  shift
  log_count=$((log_count + 1))
  log=$work/logs/$(printf '%02d' "$log_count")-${what//[^A-Za-z0-9._-]/_}.log
  printf '%s\n' "$*" >"$log"
}

# run WHAT COMMAND... : runs COMMAND with its output in a log of its own; on failure
# prints the log's tail and fails.
run() {
  local what=$1 log
  new_log "$@"
  shift
  if ! "$@" >>"$log" 2>&1 </dev/null; then
    printf -- '---- %s (last 60 lines) ----\n' "$log" >&2
    tail -n 60 "$log" >&2
    fail "$what: the command failed: $*"
  fi
}

# serial CERT: lowercase hex without leading zeros (how the store keys it).
serial() {
  local hex
  hex=$(openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f' | sed 's/^0*//')
  printf '%s\n' "${hex:-0}"
}

# first_cert FILE OUT: the first PEM certificate of FILE into OUT; rest_certs FILE OUT: the
# others; count_certs FILE: how many there are.
first_cert() { awk '/-----BEGIN CERTIFICATE-----/{n++} n==1' "$1" >"$2"; }
rest_certs() { awk '/-----BEGIN CERTIFICATE-----/{n++} n>1' "$1" >"$2"; }
count_certs() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1" || true; }

# check_issued WHAT NAME LEAF ISSUERS KEY FULLCHAIN: LEAF (one certificate) verifies to the
# bundle through ISSUERS for TLS servers and host NAME, has exactly the SAN DNS:NAME, holds
# KEY's public key; FULLCHAIN is LEAF then ISSUERS, ACME_CHAIN_LENGTH certificates.
check_issued() {
  local what=$1 name=$2 leaf=$3 issuers=$4 key=$5 fullchain=$6 out=$work/verify.out count
  [[ $(count_certs "$leaf") == 1 ]] || fail "$what: $leaf holds $(count_certs "$leaf") certificates, expected 1"
  openssl verify -CAfile "$bundle" -untrusted "$issuers" -purpose sslserver -verify_hostname "$name" \
    "$leaf" >"$out" 2>&1 || fail "$what: openssl verify: $(cat "$out")"
  local sans
  sans=$(openssl x509 -in "$leaf" -noout -ext subjectAltName | tail -n +2 | tr -d ' ')
  [[ $sans == "DNS:$name" ]] || fail "$what: subjectAltName '$sans', expected DNS:$name"
  [[ $(openssl pkey -in "$key" -pubout) == "$(openssl x509 -in "$leaf" -noout -pubkey)" ]] \
    || fail "$what: $key is not the certificate's key"
  count=$(count_certs "$fullchain")
  [[ $count == "$chain_length" ]] \
    || fail "$what: the full chain $fullchain holds $count certificates, expected $chain_length"
  first_cert "$fullchain" "$out.first"
  cmp -s <(openssl x509 -in "$out.first" -outform DER) <(openssl x509 -in "$leaf" -outform DER) \
    || fail "$what: the full chain does not start with the leaf"
  ok "$what: $name, serial $(serial "$leaf"), verifies to the root through its $((count - 1)) issuer(s)"
}

# issued LEAF NAME CLIENT / revoked LEAF REASON HOW: the records the test reads.
issued() { printf '%s %s %s\n' "$(serial "$1")" "$2" "$3" >>"$work/issued"; }
revoked() {
  local leaf=$1 reason=$2 how=$3 serial
  serial=$(serial "$leaf")
  printf '%s %s %s\n' "$serial" "$reason" "$how" >>"$work/revoked"
  [[ -n ${ACME_CERT_STATUS_URL:-} ]] || return 0
  local status=$work/status-$serial.json
  curl -sSf --cacert "$bundle" "$ACME_CERT_STATUS_URL/cert-status-by-serial/$serial" >"$status" \
    || fail "revocation of $serial: GET $ACME_CERT_STATUS_URL/cert-status-by-serial/$serial failed"
  python3 - "$status" "$reason" <<'PY' || fail "revocation of $serial: the server reports $(cat "$status")"
import json, sys
status = json.load(open(sys.argv[1]))
sys.exit(0 if status.get("Status") == "Revoked" and status.get("Reason") == int(sys.argv[2]) else 1)
PY
  ok "the server reports $serial revoked, reason $reason"
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- external account binding -----------------------------------------------------------

# next_eab: sets eab_kid and eab_hmac to the next key of ACME_EAB_KEYS not yet handed out.
# The clients get them as --option=value: a base64url key may begin with '-', which
# certbot's argument parser would take for an option.
eab_handed_out=0
eab_kid=
eab_hmac=
next_eab() {
  local line
  eab_handed_out=$((eab_handed_out + 1))
  line=$(grep . "$ACME_EAB_KEYS" | sed -n "${eab_handed_out}p")
  [[ -n $line ]] || fail "setup: ACME_EAB_KEYS has no key number $eab_handed_out"
  read -r eab_kid eab_hmac <<<"$line"
  [[ -n $eab_kid && -n $eab_hmac ]] || fail "setup: line $eab_handed_out of ACME_EAB_KEYS is not 'KEY_ID HMAC_KEY'"
}

# expect_refusal WHAT PATTERN COMMAND...: COMMAND must fail, and its output must hold PATTERN
# (a fixed string); the output is kept in a log of its own.
expect_refusal() {
  local what=$1 pattern=$2 log
  shift 2
  new_log "$what" "$@"
  if "$@" >>"$log" 2>&1 </dev/null; then
    fail "$what: the command succeeded, it should have been refused: $*"
  fi
  grep -qF -- "$pattern" "$log" || {
    tail -n 30 "$log" >&2
    fail "$what: refused, but without '$pattern' (log: $log)"
  }
}

# eab_refusals: a server that requires a binding says so in its directory (§7.1.1 meta
# externalAccountRequired), and refuses a binding MACed with a key other than the one its
# key ID names (§7.3.4); lego, which reads the directory, refuses to register without one.
eab_refusals() {
  local name=eab-refused.$run.test path=$work/lego-eab-refused wrong
  step "external account binding: required by the directory, a wrong HMAC key refused"
  python3 - "$work/directory.json" <<'PY' || fail "the directory's meta does not say externalAccountRequired: $(cat "$work/directory.json")"
import json, sys
sys.exit(0 if json.load(open(sys.argv[1])).get("meta", {}).get("externalAccountRequired") is True else 1)
PY
  ok "directory: meta.externalAccountRequired is true"
  expect_refusal "lego-without-eab" "External Account Binding" "$lego" --server "$directory" \
    --path "$path" --accept-tos --email acme-test@example.org --domains "$name" \
    --http --http.port "127.0.0.1:$ACME_HTTP01_PORT" run
  ok "lego without --eab: refused before registering"
  next_eab
  wrong=$(python3 -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')
  expect_refusal "lego-wrong-hmac" "urn:ietf:params:acme:error:" "$lego" --server "$directory" \
    --path "$path" --accept-tos --email acme-test@example.org --eab "--kid=$eab_kid" "--hmac=$wrong" \
    --domains "$name" --http --http.port "127.0.0.1:$ACME_HTTP01_PORT" run
  ok "lego with key ID $eab_kid and another HMAC key: the server refused the account"
}

# eab_single_use: a key already bound to an account (the first one recorded in
# $work/eab) cannot bind another.
eab_single_use() {
  local name=eab-reused.$run.test path=$work/lego-eab-reused kid hmac
  read -r kid _ <"$work/eab"
  hmac=$(awk -v kid="$kid" '$1 == kid { print $2 }' "$ACME_EAB_KEYS")
  [[ -n $hmac ]] || fail "setup: key $kid is not in ACME_EAB_KEYS"
  step "external account binding: key $kid, bound to an account already, binds no other"
  expect_refusal "lego-reused-eab" "urn:ietf:params:acme:error:unauthorized" "$lego" \
    --server "$directory" --path "$path" --accept-tos --email acme-test@example.org \
    --eab "--kid=$kid" "--hmac=$hmac" --domains "$name" --http --http.port "127.0.0.1:$ACME_HTTP01_PORT" run
  ok "lego with key $kid again: refused (unauthorized)"
}

# ---- lego -------------------------------------------------------------------------------

# lego_case CHALLENGE REASON: a fresh account in its own --path; run, renew (forced),
# revoke with RFC 5280 reason code REASON, all through CHALLENGE.
lego_case() {
  local challenge=$1 reason=$2 name=lego-$1.$run.test path=$work/lego-$1
  local solver
  case $challenge in
    http-01) solver=(--http --http.port "127.0.0.1:$ACME_HTTP01_PORT") ;;
    tls-alpn-01) solver=(--tls --tls.port "127.0.0.1:$ACME_TLSALPN01_PORT") ;;
    # The exec provider calls the hook with "present|cleanup FQDN VALUE". lego's check that
    # the record is visible asks the resolver given here (challtestsrv); the check of every
    # authoritative server is off, because challtestsrv answers no SOA or NS queries.
    dns-01) solver=(--dns exec --dns.resolvers "$ACME_DNS_SERVER" --dns.disable-cp) ;;
  esac
  local lego_args=(--server "$directory" --path "$path" --accept-tos --email "acme-test@example.org"
    --key-type ec256 --domains "$name" "${solver[@]}")
  if [[ -n ${ACME_EAB_KEYS:-} ]]; then
    # Used by `run`, which registers the account; `renew` and `revoke` find it in --path.
    next_eab
    lego_args+=(--eab "--kid=$eab_kid" "--hmac=$eab_hmac")
    printf '%s lego %s\n' "$eab_kid" "$name" >>"$work/eab"
  fi
  local certs=$path/certificates
  export EXEC_PATH=$hook EXEC_POLLING_INTERVAL=1 EXEC_PROPAGATION_TIMEOUT=30

  step "lego $challenge: new account, order for $name (lego run)"
  run "lego-$challenge-run" "$lego" "${lego_args[@]}" run
  first_cert "$certs/$name.crt" "$path/first.crt"
  check_issued "lego $challenge: issued" "$name" "$path/first.crt" "$certs/$name.issuer.crt" \
    "$certs/$name.key" "$certs/$name.crt"
  issued "$path/first.crt" "$name" lego
  if [[ $challenge == http-01 ]]; then
    serve_with_nginx "$name" "$certs/$name.crt" "$certs/$name.key"
  fi

  step "lego $challenge: renewal of $name (lego renew --days 9999, i.e. now)"
  run "lego-$challenge-renew" "$lego" "${lego_args[@]}" renew --days 9999 --no-random-sleep
  first_cert "$certs/$name.crt" "$path/renewed.crt"
  check_issued "lego $challenge: renewed" "$name" "$path/renewed.crt" "$certs/$name.issuer.crt" \
    "$certs/$name.key" "$certs/$name.crt"
  [[ $(serial "$path/renewed.crt") != "$(serial "$path/first.crt")" ]] \
    || fail "lego $challenge: the renewed certificate has the first one's serial"
  issued "$path/renewed.crt" "$name" lego

  step "lego $challenge: revocation of the renewed certificate, reason $reason (lego revoke)"
  run "lego-$challenge-revoke" "$lego" "${lego_args[@]}" revoke --reason "$reason" --keep
  ok "lego $challenge: revoked serial $(serial "$path/renewed.crt") (signed with the account key)"
  revoked "$path/renewed.crt" "$reason" account
}

# ---- certbot ----------------------------------------------------------------------------

# certbot_case CERTBOT LABEL CHALLENGE: a fresh account in its own directories; certonly,
# renew (forced), revoke. http-01 revokes with the account key, dns-01 with the
# certificate's own key (RFC 8555 §7.6 allows both). certbot has no tls-alpn-01
# authenticator: that challenge is proven by lego above.
certbot_case() {
  local certbot=$1 label=$2 challenge=$3 name=$2-$3.$run.test dir=$work/$2-$3
  local common=(--config-dir "$dir/config" --work-dir "$dir/work" --logs-dir "$dir/logs"
    --server "$directory" --non-interactive)
  local solver
  case $challenge in
    http-01) solver=(--standalone --preferred-challenges http --http-01-port "$ACME_HTTP01_PORT"
      --http-01-address 127.0.0.1) ;;
    dns-01) solver=(--manual --preferred-challenges dns
      --manual-auth-hook "$hook certbot-auth" --manual-cleanup-hook "$hook certbot-cleanup") ;;
  esac
  local live=$dir/config/live/$name
  local binding=()
  if [[ -n ${ACME_EAB_KEYS:-} ]]; then
    next_eab
    binding=("--eab-kid=$eab_kid" "--eab-hmac-key=$eab_hmac")
    printf '%s %s %s\n' "$eab_kid" "$label" "$name" >>"$work/eab"
  fi

  step "$label $challenge: new account, order for $name (certbot certonly)"
  run "$label-$challenge-certonly" "$certbot" certonly "${common[@]}" "${solver[@]}" --agree-tos \
    --register-unsafely-without-email --key-type ecdsa --cert-name "$name" -d "$name" "${binding[@]}"
  check_issued "$label $challenge: issued" "$name" "$live/cert.pem" "$live/chain.pem" \
    "$live/privkey.pem" "$live/fullchain.pem"
  cp "$live/cert.pem" "$dir/first.crt"
  issued "$dir/first.crt" "$name" "$label"

  step "$label $challenge: renewal of $name (certbot renew --force-renewal)"
  run "$label-$challenge-renew" "$certbot" renew "${common[@]}" --cert-name "$name" --force-renewal \
    --no-random-sleep-on-renew
  check_issued "$label $challenge: renewed" "$name" "$live/cert.pem" "$live/chain.pem" \
    "$live/privkey.pem" "$live/fullchain.pem"
  [[ $(serial "$live/cert.pem") != "$(serial "$dir/first.crt")" ]] \
    || fail "$label $challenge: the renewed certificate has the first one's serial"
  cp "$live/cert.pem" "$dir/renewed.crt"
  issued "$dir/renewed.crt" "$name" "$label"

  if [[ $challenge == http-01 ]]; then
    step "$label $challenge: revocation with the account key, reason superseded (certbot revoke)"
    run "$label-$challenge-revoke" "$certbot" revoke "${common[@]}" --cert-path "$dir/renewed.crt" \
      --reason superseded --no-delete-after-revoke
    ok "$label $challenge: revoked serial $(serial "$dir/renewed.crt") (signed with the account key)"
    revoked "$dir/renewed.crt" 4 account
  else
    step "$label $challenge: revocation with the certificate's key, reason keyCompromise (certbot revoke --key-path)"
    run "$label-$challenge-revoke" "$certbot" revoke "${common[@]}" --cert-path "$dir/renewed.crt" \
      --key-path "$live/privkey.pem" --reason keycompromise --no-delete-after-revoke
    ok "$label $challenge: revoked serial $(serial "$dir/renewed.crt") (signed with the certificate's key)"
    revoked "$dir/renewed.crt" 1 certificate-key
  fi
}

# ---- nginx ------------------------------------------------------------------------------

nginx_pid=
stop_nginx() {
  if [[ -n $nginx_pid ]]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
  fi
}
trap stop_nginx EXIT

# serve_with_nginx NAME FULLCHAIN KEY: nginx serves FULLCHAIN and KEY over HTTPS on a free
# loopback port; curl (trusting only the bundle) fetches a page from https://NAME:port/,
# and `openssl s_client` sees the whole chain and verifies it for NAME.
serve_with_nginx() {
  local name=$1 fullchain=$2 key=$3 dir=$work/nginx port
  mkdir -p "$dir/temp"
  port=$(free_port)
  # As root, nginx would run its worker as `nobody`, which cannot read the work directory;
  # master_process off keeps one process, which the trap stops by its PID.
  local user=
  [[ $(id -u) != 0 ]] || user="user root root;"
  cat >"$dir/nginx.conf" <<EOF
# Written by tests/acme/clients.sh.
$user
master_process off;
error_log $dir/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/temp/client_body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;
    server {
        listen 127.0.0.1:$port ssl;
        server_name $name;
        ssl_certificate $fullchain;
        ssl_certificate_key $key;
        location / { default_type text/plain; return 200 "served by nginx for $name\n"; }
    }
}
EOF
  step "nginx: serving $name's chain on 127.0.0.1:$port"
  "$nginx" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" -g "daemon off; pid $dir/nginx.pid;" \
    </dev/null >"$dir/stdout.log" 2>&1 &
  nginx_pid=$!
  local tries=0 body
  until body=$(curl -sS --max-time 5 --cacert "$bundle" --resolve "$name:$port:127.0.0.1" \
    "https://$name:$port/" 2>"$dir/curl.err"); do
    tries=$((tries + 1))
    if ((tries > 50)) || ! kill -0 "$nginx_pid" 2>/dev/null; then
      fail "nginx: https://$name:$port/ did not answer: $(cat "$dir/curl.err"); error log: $(tail -n 20 "$dir/error.log" 2>/dev/null)"
    fi
    sleep 0.2
  done
  [[ $body == "served by nginx for $name" ]] || fail "nginx: unexpected page '$body'"
  ok "curl --cacert <bundle> https://$name:$port/: the chain verifies, the page arrives"
  openssl s_client -connect "127.0.0.1:$port" -servername "$name" -CAfile "$bundle" \
    -verify_return_error -verify_hostname "$name" -showcerts </dev/null >"$dir/s_client.out" 2>&1 \
    || fail "nginx: openssl s_client: $(tail -n 20 "$dir/s_client.out")"
  grep -q 'Verify return code: 0 (ok)' "$dir/s_client.out" \
    || fail "nginx: openssl s_client did not verify: $(grep 'Verify return code' "$dir/s_client.out")"
  local shown
  shown=$(count_certs "$dir/s_client.out")
  [[ $shown == "$chain_length" ]] || fail "nginx: openssl s_client shows $shown certificates, expected $chain_length"
  ok "openssl s_client: nginx sends $shown certificates, verify return code 0 for $name"
  stop_nginx
}

# ---- the run ----------------------------------------------------------------------------

step "ACME server $directory (run $run, work $work)"
curl -sSf --cacert "$bundle" "$directory" >"$work/directory.json" \
  || fail "GET $directory failed (is the bundle the signer of its TLS certificate?)"
python3 - "$work/directory.json" <<'PY' || fail "the directory lacks RFC 8555 §7.1.1's URLs: $(cat "$work/directory.json")"
import json, sys
directory = json.load(open(sys.argv[1]))
sys.exit(0 if all(directory.get(k, "").startswith("https://") for k in ("newNonce", "newAccount", "newOrder", "revokeCert")) else 1)
PY
ok "directory: newNonce, newAccount, newOrder, revokeCert"
ok "lego $("$lego" --version | awk '{print $3}'), certbots: ${certbots[*]}"
[[ -z ${ACME_EAB_KEYS:-} ]] || eab_refusals

lego_case http-01 4
lego_case dns-01 5
lego_case tls-alpn-01 0

index=0
for certbot in "${certbots[@]}"; do
  index=$((index + 1))
  label=certbot$index
  step "$label is $certbot ($("$certbot" --version 2>&1))"
  certbot_case "$certbot" "$label" http-01
  certbot_case "$certbot" "$label" dns-01
done

[[ -z ${ACME_EAB_KEYS:-} || ${ACME_EAB_SINGLE_USE:-} != 1 ]] || eab_single_use

step "all checks passed: $(wc -l <"$work/issued") certificates issued, $(wc -l <"$work/revoked") revoked"
