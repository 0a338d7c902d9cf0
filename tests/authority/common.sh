# Shared by tests/authority/*.sh (sourced, not run). Reads the environment the scripts take:
#
#   STEPPATH               the CA's state directory; $STEPPATH/config/defaults.json names
#                          the CA ("ca-url", "root", "fingerprint"), as step's does
#   STEPCA_TOOL            stepca-tool (scripts/stepca-peer builds it)
#   STEPCA_PASSWORD_FILE   the JWK provisioner's password
#   STEPCA_WORK            an empty directory the script may fill
#   STEPCA_PROVISIONER     the JWK provisioner's name (default admin)
#
# and sets: ca_url, root (root certificate file), intermediate (intermediate certificate
# file), provisioner, work. Every check prints one line, "ok   WHAT"; the first failure
# prints "FAIL WHAT: WHY" on stderr and exits 1.

set -euo pipefail

ok() { printf 'ok   %s\n' "$*"; }
fail() {
  printf 'FAIL %s\n' "$*" >&2
  exit 1
}

for var in STEPPATH STEPCA_TOOL STEPCA_PASSWORD_FILE STEPCA_WORK; do
  [[ -n ${!var:-} ]] || fail "setup: $var is not set (see the header of $0)"
done
[[ -x $STEPCA_TOOL ]] || fail "setup: STEPCA_TOOL=$STEPCA_TOOL is not an executable"
[[ -r $STEPCA_PASSWORD_FILE ]] || fail "setup: STEPCA_PASSWORD_FILE=$STEPCA_PASSWORD_FILE is not readable"
[[ -d $STEPCA_WORK ]] || fail "setup: STEPCA_WORK=$STEPCA_WORK is not a directory"
for tool in openssl ssh-keygen curl python3; do
  command -v "$tool" >/dev/null || fail "setup: $tool is required (Debian: openssl openssh-client curl python3)"
done
export STEPPATH
work=$STEPCA_WORK
provisioner=${STEPCA_PROVISIONER:-admin}
pass=$STEPCA_PASSWORD_FILE

# json FILE KEY.KEY... : the value at that path of a JSON document; lists are printed one
# item a line, objects as JSON, a missing key as nothing.
json() {
  python3 - "$@" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split(".") if sys.argv[2] else []:
    value = value.get(key) if isinstance(value, dict) else None
if isinstance(value, list):
    for item in value:
        print(item if isinstance(item, str) else json.dumps(item))
elif isinstance(value, dict):
    print(json.dumps(value, sort_keys=True))
elif value is not None:
    print(value if not isinstance(value, bool) else str(value).lower())
PY
}

defaults=$STEPPATH/config/defaults.json
[[ -r $defaults ]] || fail "setup: $defaults is missing"
ca_url=$(json "$defaults" ca-url)
root=$(json "$defaults" root)
[[ $ca_url == https://* ]] || fail "setup: $defaults: ca-url '$ca_url' is not an https URL"
[[ -r $root ]] || fail "setup: $defaults: root '$root' is not readable"
intermediate=$STEPPATH/certs/intermediate_ca.crt
[[ -r $intermediate ]] || fail "setup: $intermediate is missing"

# stepca-tool with the CA's environment; stdout and stderr as the tool leaves them.
tool() { "$STEPCA_TOOL" "$@"; }

# refused STATUS WHAT COMMAND... : COMMAND (a stepca-tool run) must fail with the CA's
# error JSON carrying STATUS ("(status N)" at the end of stepca-tool's message).
refused() {
  local status=$1 what=$2
  shift 2
  if "$@" >"$work/refused.out" 2>"$work/refused.err"; then
    fail "$what: succeeded, expected a refusal with status $status"
  fi
  local message
  message=$(tail -n 1 "$work/refused.err")
  [[ $message == *"(status $status)" ]] || fail "$what: expected status $status, got: $message"
  message=${message#stepca-tool: }
  ok "$what: refused, status $status: ${message% (status $status)}"
}

# sha256 of a certificate's DER, lower-case hex (step's root fingerprint).
fingerprint() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# Seconds since the epoch of an openssl date ("Dec  7 02:52:51 2026 GMT").
epoch() { date -u -d "$1" +%s; }

# A certificate's notBefore / notAfter in seconds since the epoch.
not_before() { epoch "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)"; }
not_after() { epoch "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)"; }

# The SSH CA keys from GET /1.0/ssh/roots ({"userKey": [b64], "hostKey": [b64]}, each the
# key's SSH wire encoding) as authorized_keys lines: ssh_roots userKey|hostKey FILE.
ssh_roots() {
  curl -sSf --cacert "$root" "$ca_url/1.0/ssh/roots" >"$work/ssh-roots.json" \
    || fail "GET /1.0/ssh/roots failed"
  python3 - "$work/ssh-roots.json" "$1" >"$2" <<'PY' || fail "GET /1.0/ssh/roots: no $1 in $(cat "$work/ssh-roots.json")"
import base64, json, struct, sys
keys = json.load(open(sys.argv[1])).get(sys.argv[2]) or []
if not keys:
    sys.exit(1)
for b64 in keys:
    blob = base64.b64decode(b64)
    (n,) = struct.unpack(">I", blob[:4])
    print(blob[4 : 4 + n].decode(), b64)
PY
}

# The SHA256 fingerprint ssh-keygen shows for an authorized_keys line's key.
ssh_fingerprint() { ssh-keygen -l -f "$1" | awk '{ print $2 }'; }
