#!/usr/bin/env bash
# tls.sh - HTTPS with certificates made here by certtool (a CA, a server certificate for 127.0.0.1, an
# expired one, a client certificate, a second CA): curl --cacert gets answers on every route kind; a wrong
# CA, an expired certificate, TLS 1.1 and (mTLS) a missing or foreign client certificate fail; plain HTTP
# to the TLS port gets nothing of the API; SIGHUP rotates the certificate while a client keeps sending
# requests (none lost), and a bad pair on SIGHUP keeps the old one serving.
. "$(dirname "$0")/../lib.sh"
set -eo pipefail
command -v certtool >/dev/null || skip "certtool (gnutls-bin) is missing"
c=$tmp/pki
mkdir -p "$c"
cert() { # NAME SIGNER(or self) TEMPLATE-LINES...
    local name=$1 signer=$2; shift 2
    printf '%s\n' "$@" >"$c/$name.tmpl"
    certtool --generate-privkey --key-type ecdsa --outfile "$c/$name.key" 2>/dev/null
    if [[ $signer == self ]]; then
        certtool --generate-self-signed --load-privkey "$c/$name.key" --template "$c/$name.tmpl" --outfile "$c/$name.pem" 2>/dev/null
    else
        certtool --generate-certificate --load-privkey "$c/$name.key" --load-ca-certificate "$c/$signer.pem" \
            --load-ca-privkey "$c/$signer.key" --template "$c/$name.tmpl" --outfile "$c/$name.pem" 2>/dev/null
    fi
}
cert ca self 'cn = "tripletd test CA"' ca cert_signing_key 'expiration_days = 30'
cert ca2 self 'cn = "another CA"' ca cert_signing_key 'expiration_days = 30'
cert server ca 'cn = "127.0.0.1"' 'ip_address = "127.0.0.1"' 'dns_name = "localhost"' tls_www_server 'expiration_days = 30' 'serial = 1001'
cert server2 ca 'cn = "127.0.0.1"' 'ip_address = "127.0.0.1"' tls_www_server 'expiration_days = 30' 'serial = 2002'
cert expired ca 'cn = "127.0.0.1"' 'ip_address = "127.0.0.1"' tls_www_server \
    'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2020-02-01 00:00:00"'
cert client ca 'cn = "client"' tls_www_client 'expiration_days = 30'
cert foreign ca2 'cn = "stranger"' tls_www_client 'expiration_days = 30'
[[ -s $c/server.pem && -s $c/expired.pem && -s $c/client.pem ]] && ok "certificates made" || bad "certtool made no certificates"

cp "$c/server.pem" "$tmp/live.pem"; cp "$c/server.key" "$tmp/live.key"
start_server --tls-cert "$tmp/live.pem" --tls-key "$tmp/live.key"
https=https://127.0.0.1:$port
k=(-H "Authorization: Bearer $KEY")
s() { curl -s -m 10 --cacert "$c/ca.pem" "$@"; }
s -f "$https/healthz" >/dev/null && ok "GET /healthz over TLS" || bad "GET /healthz over TLS"
s -f "${k[@]}" "$https/v1/model" | grep -c '"sha256"' >/dev/null && ok "GET /v1/model over TLS" || bad "GET /v1/model over TLS"
body=$(python3 -c 'print({"inputs": [[0.5] * 784]}.__repr__().replace("\x27", "\""))')
s -f "${k[@]}" -H 'Content-Type: application/json' -d "$body" "$https/v1/embed" | grep -c '"embeddings"' >/dev/null \
    && ok "POST /v1/embed over TLS" || bad "POST /v1/embed over TLS"
s -f "$https/metrics" | grep -c '^tripletd_' >/dev/null && ok "GET /metrics over TLS" || bad "GET /metrics over TLS"
code=$(s -o /dev/null -w '%{http_code}' "$https/v1/model")
[[ $code == 401 ]] && ok "the API key still applies over TLS" || bad "no key over TLS -> $code"
rc=0; curl -s -m 10 --cacert "$c/ca2.pem" "$https/healthz" >/dev/null || rc=$?
((rc != 0)) && ok "a client trusting another CA refuses the server (curl exit $rc)" || bad "wrong CA accepted"
rc=0; s --tls-max 1.1 "$https/healthz" >/dev/null 2>&1 || rc=$?
((rc != 0)) && ok "TLS 1.1 is refused (curl exit $rc)" || bad "TLS 1.1 accepted"
rc=0; s --tlsv1.3 -f "$https/healthz" >/dev/null || rc=$?
((rc == 0)) && ok "TLS 1.3 works" || bad "TLS 1.3 failed ($rc)"
rc=0; s --tlsv1.2 --tls-max 1.2 -f "$https/healthz" >/dev/null || rc=$?
((rc == 0)) && ok "TLS 1.2 works" || bad "TLS 1.2 failed ($rc)"
# plain HTTP on the TLS port: no API answer
curl -s -m 5 "${k[@]}" "http://127.0.0.1:$port/v1/model" -o "$tmp/plain.out" || true
! grep -q 'sha256\|embeddings' "$tmp/plain.out" 2>/dev/null && ok "plain HTTP to the TLS port gets no API data" || bad "plain HTTP got data"
s -f "$https/healthz" >/dev/null && ok "still serving TLS after a plain HTTP client" || bad "TLS broken after plain HTTP"

# rotation under load: a client loops while the certificate changes twice and a bad pair is tried once
serial() { openssl s_client -connect "127.0.0.1:$port" -CAfile "$c/ca.pem" </dev/null 2>/dev/null | openssl x509 -noout -serial; }
[[ $(serial) == *3E9* ]] && ok "serving certificate serial 1001" || bad "serial before rotation: $(serial)"
( n=0 f=0; for _ in $(seq 150); do if s -f "$https/healthz" >/dev/null; then n=$((n + 1)); else f=$((f + 1)); fi; done
  echo "$n $f" >"$tmp/load" ) &
loader=$!
srv=${pids[-1]}
sleep 0.3
cp "$c/server2.pem" "$tmp/live.pem"; cp "$c/server2.key" "$tmp/live.key"; kill -HUP "$srv"; sleep 0.3
cp "$c/server.key" "$tmp/live.key"; kill -HUP "$srv"; sleep 0.3   # server2.pem with server.key: refused
wait "$loader"
read -r n f <"$tmp/load"
((f == 0 && n == 150)) && ok "150 requests during two SIGHUPs, none lost" || bad "during rotation: $n ok, $f failed"
[[ $(serial) == *7D2* ]] && ok "after SIGHUP the new certificate (serial 2002) serves" || bad "serial after rotation: $(serial)"
grep -q "does not match the certificate" "$tmp/srv.err" && ok "a mismatched pair is refused and logged" || bad "mismatch not logged: $(tail -3 "$tmp/srv.err")"

# an expired certificate: clients refuse it
start_server --tls-cert "$c/expired.pem" --tls-key "$c/expired.key"
rc=0; s "https://127.0.0.1:$port/healthz" >/dev/null || rc=$?
((rc != 0)) && ok "an expired server certificate is refused by the client (curl exit $rc)" || bad "expired certificate accepted"

# mutual TLS
start_server --tls-cert "$c/server.pem" --tls-key "$c/server.key" --tls-client-ca "$c/ca.pem"
m=https://127.0.0.1:$port
s -f --cert "$c/client.pem" --key "$c/client.key" "$m/healthz" >/dev/null && ok "mTLS: a client certificate from the CA gets answers" \
    || bad "mTLS: the CA's client was refused"
out=$(s --cert "$c/client.pem" --key "$c/client.key" "${k[@]}" "$m/v1/model")
grep -q '"sha256"' <<<"$out" && ok "mTLS: /v1/model with a client certificate" || bad "mTLS /v1/model: $out"
code=$(s -o "$tmp/nocert" -w '%{http_code}' "$m/healthz" || true)
[[ $code == 000 ]] && ok "mTLS: no client certificate -> no HTTP answer" || bad "mTLS: no certificate got HTTP $code"
code=$(s -o "$tmp/foreign" -w '%{http_code}' --cert "$c/foreign.pem" --key "$c/foreign.key" "$m/healthz" || true)
[[ $code == 000 ]] && ok "mTLS: a certificate from another CA -> no HTTP answer" || bad "mTLS: foreign certificate got HTTP $code"

# flags: a key without a certificate, a mismatched pair at start
expect "--tls-key alone refused" 2 "$TRIPLETD" --model "$MODEL" --port 0 --tls-key "$c/server.key"
has "--tls-key alone message" "$tmp/err" "TLS needs both --tls-cert and --tls-key"
expect "mismatched pair refused at start" 2 "$TRIPLETD" --model "$MODEL" --port 0 --tls-cert "$c/server.pem" --tls-key "$c/client.key"
has "mismatched pair message" "$tmp/err" "does not match the certificate"
finish
