#!/usr/bin/env bash
# dns-01 (RFC 8555 §8.4) for the clients in clients.sh: sets and clears the
# _acme-challenge TXT record on pebble-challtestsrv through its management API
# (POST /set-txt {"host", "value"}, POST /clear-txt {"host"}).
#
#   dns-hook.sh present FQDN VALUE   lego's exec DNS provider (EXEC_PATH=dns-hook.sh): FQDN
#   dns-hook.sh cleanup FQDN VALUE   is _acme-challenge.<name>. with its final dot
#   dns-hook.sh certbot-auth         certbot --manual-auth-hook: CERTBOT_DOMAIN and
#   dns-hook.sh certbot-cleanup      CERTBOT_VALIDATION in the environment
#
# ACME_DNS_MANAGEMENT names the management URL (http://127.0.0.1:PORT). Each call is logged
# to $ACME_WORK/dns-hook.log when ACME_WORK is set.
set -euo pipefail

management=${ACME_DNS_MANAGEMENT:?ACME_DNS_MANAGEMENT is not set (the DNS server management URL)}

case ${1:-} in
  present | cleanup)
    [[ $# == 3 ]] || { echo "usage: $0 present|cleanup FQDN VALUE" >&2; exit 2; }
    action=$1 host=$2 value=$3
    ;;
  certbot-auth | certbot-cleanup)
    action=present
    [[ $1 == certbot-cleanup ]] && action=cleanup
    host=_acme-challenge.${CERTBOT_DOMAIN:?CERTBOT_DOMAIN is not set}.
    value=${CERTBOT_VALIDATION:?CERTBOT_VALIDATION is not set}
    ;;
  *)
    echo "usage: $0 present|cleanup FQDN VALUE | certbot-auth | certbot-cleanup" >&2
    exit 2
    ;;
esac
[[ $host == *. ]] || host=$host.
# The values are base64url digests and the names DNS names: nothing to escape in JSON.
if [[ $action == present ]]; then
  body="{\"host\":\"$host\",\"value\":\"$value\"}"
  endpoint=set-txt
else
  body="{\"host\":\"$host\"}"
  endpoint=clear-txt
fi
curl -sSf --max-time 10 -X POST -H 'content-type: application/json' -d "$body" "$management/$endpoint"
if [[ -n ${ACME_WORK:-} ]]; then
  printf '%s %s %s\n' "$endpoint" "$host" "$value" >>"$ACME_WORK/dns-hook.log"
fi
