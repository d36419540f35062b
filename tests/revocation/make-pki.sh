#!/usr/bin/env bash
# A PKI whose certificates name revocation sources on loopback, for tests/revocation.rs:
#   root (the anchor)
#   ├── inter   (CDP root.crl)                      ── issues the signers below, its OCSP
#   │   ├── good        (OCSP :OCSP, CDP inter.crl)     responder, and the CRLs inter.crl,
#   │   ├── revoked     (OCSP :OCSP, CDP inter.crl)     listing `revoked`, and stale.crl
#   │   ├── stale       (CDP stale.crl only: nextUpdate passed)
#   │   ├── unreachable (OCSP :DEAD only: nothing listens there)
#   │   └── junk        (CDP junk.crl: the server answers bytes that are no CRL)
#   └── inter2  (CDP root.crl, which lists it as revoked)
#       └── under-revoked-ca (CDP inter2.crl)
# Usage: make-pki.sh DIR CRL_PORT OCSP_PORT DEAD_PORT
set -euo pipefail
dir=$1 crl=$2 ocsp=$3 dead=$4
cd "$dir"
key() { openssl genrsa -out "$1.key" 2048 2>/dev/null; }
# cert NAME ISSUER EXTENSIONS...
cert() {
  local name=$1 issuer=$2; shift 2
  key "$name"
  printf '%s\n' "$@" > "$name.ext"
  openssl req -new -key "$name.key" -subj "/C=PL/O=Test revocation/CN=$name" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$issuer.pem" -CAkey "$issuer.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
}
key root
openssl req -x509 -new -key root.key -subj "/C=PL/O=Test revocation/CN=root" -days 3650 -sha256 \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out root.pem 2>/dev/null
ca="basicConstraints=critical,CA:true
keyUsage=critical,keyCertSign,cRLSign
crlDistributionPoints=URI:http://127.0.0.1:$crl/root.crl"
cert inter root "$ca"
cert inter2 root "$ca"
leaf="keyUsage=critical,digitalSignature,nonRepudiation"
cert good inter "$leaf" "authorityInfoAccess=OCSP;URI:http://127.0.0.1:$ocsp" "crlDistributionPoints=URI:http://127.0.0.1:$crl/inter.crl"
cert revoked inter "$leaf" "authorityInfoAccess=OCSP;URI:http://127.0.0.1:$ocsp" "crlDistributionPoints=URI:http://127.0.0.1:$crl/inter.crl"
cert stale inter "$leaf" "crlDistributionPoints=URI:http://127.0.0.1:$crl/stale.crl"
cert unreachable inter "$leaf" "authorityInfoAccess=OCSP;URI:http://127.0.0.1:$dead"
cert junk inter "$leaf" "crlDistributionPoints=URI:http://127.0.0.1:$crl/junk.crl"
printf 'this is not a CRL\n' > junk.crl
cert under-revoked-ca inter2 "$leaf" "crlDistributionPoints=URI:http://127.0.0.1:$crl/inter2.crl"
cert responder inter "keyUsage=critical,digitalSignature" "extendedKeyUsage=OCSPSigning"

# index.txt lines (openssl ca's database): V or R, expiry, revocation time, serial, file, subject.
line() { # line STATUS NAME
  local serial subject end revoked=""
  serial=$(openssl x509 -in "$2.pem" -noout -serial | cut -d= -f2)
  subject=$(openssl x509 -in "$2.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
  end=$(date -u -d "+3640 days" +%y%m%d%H%M%SZ)
  [ "$1" = R ] && revoked=$(date -u -d "-2 days" +%y%m%d%H%M%SZ)
  printf '%s\t%s\t%s\t%s\tunknown\t%s\n' "$1" "$end" "$revoked" "$serial" "$subject"
}
crl() { # crl ISSUER OUT INDEX-LINES... [-- extra openssl ca options]
  local issuer=$1 out=$2; shift 2
  : > "$issuer-index.txt"
  while [ $# -gt 0 ] && [ "$1" != -- ]; do echo "$1" >> "$issuer-index.txt"; shift; done
  [ "${1:-}" = -- ] && shift
  echo 1000 > "$issuer-crlnumber"
  cat > "$issuer-ca.cnf" <<CNF
[ca]
default_ca = this
[this]
database = $issuer-index.txt
crlnumber = $issuer-crlnumber
default_md = sha256
default_crl_days = 1
CNF
  openssl ca -config "$issuer-ca.cnf" -gencrl -keyfile "$issuer.key" -cert "$issuer.pem" \
    "$@" -out "$out.pem" 2>/dev/null
  openssl crl -in "$out.pem" -outform DER -out "$out"
}
crl root root.crl "$(line V inter)" "$(line R inter2)"
crl inter2 inter2.crl "$(line V under-revoked-ca)"
crl inter stale.crl "$(line V stale)" -- \
  -crl_lastupdate "$(date -u -d '-10 days' +%Y%m%d%H%M%SZ)" -crl_nextupdate "$(date -u -d '-3 days' +%Y%m%d%H%M%SZ)"
# Last for inter: its index is also the OCSP responder's database.
crl inter inter.crl "$(line V good)" "$(line R revoked)" "$(line V stale)" "$(line V unreachable)"
