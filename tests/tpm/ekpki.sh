# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# ekpki.sh - a TPM vendor's EK PKI for tests, mirroring a real one (docs/tpm.md); sourced.
#
#   ekpki_make DIR   makes, in DIR:
#     vroot.pem/.key         the "TPM vendor root" (P-384)
#     proot.pem/.key         the "public root" that cross-signs the vendor's EK CA (P-384)
#     ekca.key               the EK CA's key (P-256)
#     ekca.pem               the EK CA certificate, signed by the vendor root
#     ekca-cross.pem         the same EK CA key and subject, cross-signed by the public root
#     ekca-cross-expired.pem the same again, cross-signed by the public root, expired
#     swtpm_setup.conf       for `swtpm_manufacture D --create-ek-cert --config DIR/swtpm_setup.conf`
#                            (tests/swtpm.sh): swtpm_localca with its own state in DIR, so
#                            the EK certificates are issued by the EK CA and nothing global
#                            (/etc/swtpm-localca.conf, /var/lib/swtpm-localca) is touched
#     spare.key, spare-ek.pem an RSA 2048 EK certificate made with openssl (a key we hold),
#                            issued by the EK CA, meeting the TCG EK profile
#     spare-noeku.pem        the same key and EK CA, without the extendedKeyUsage
#                            tcg-kp-EKCertificate
#   ekpki_read_ek OUT_PREFIX reads the EK certificates of the running swtpm (swtpm_start)
#                            from NV: OUT_PREFIX-rsa.der (0x01c00002) and, when present,
#                            OUT_PREFIX-p256.der (0x01c0000a) and OUT_PREFIX-p384.der (0x01c00016)
#
# Each function returns non-zero with the tools' output on stderr when something fails.

ekpki_ca() { # DIR NAME SUBJECT KEY ISSUER_PEM ISSUER_KEY DAYS
	openssl req -new -key "$1/$4" -subj "$3" -out "$1/$2.csr" 2>>"$1/ekpki.log" &&
	    openssl x509 -req -in "$1/$2.csr" -CA "$1/$5" -CAkey "$1/$6" -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
		-days "$7" -extfile "$1/ca.ext" -out "$1/$2.pem" 2>>"$1/ekpki.log"
}

ekpki_make() {
	d=$1
	mkdir -p "$d/localca" || return 1
	cat >"$d/ca.ext" <<EOT
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EOT
	cat >"$d/ek.ext" <<EOT
basicConstraints=critical,CA:FALSE
keyUsage=critical,keyEncipherment
authorityKeyIdentifier=keyid:always
subjectAltName=critical,dirName:tpm_dn
extendedKeyUsage=2.23.133.8.1
[tpm_dn]
# openssl reads a field name up to its first dot as a counter: "a." keeps the OIDs whole
a.2.23.133.2.1=id:49465800
b.2.23.133.2.2=SLB9672
c.2.23.133.2.3=id:00100300
EOT
	grep -v extendedKeyUsage "$d/ek.ext" >"$d/noeku.ext"
	for r in vroot:"TPM Vendor Root" proot:"Public Root"; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes \
		    -keyout "$d/${r%%:*}.key" -out "$d/${r%%:*}.pem" -days 7300 \
		    -subj "/O=${r#*:}/CN=${r#*:}" -addext basicConstraints=critical,CA:TRUE \
		    -addext keyUsage=critical,keyCertSign,cRLSign 2>>"$d/ekpki.log" || return 1
	done
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ekca.key" \
	    2>>"$d/ekpki.log" || return 1
	ekpki_ca "$d" ekca "/O=TPM Vendor/CN=TPM Vendor EK CA" ekca.key vroot.pem vroot.key 3650 &&
	    ekpki_ca "$d" ekca-cross "/O=TPM Vendor/CN=TPM Vendor EK CA" ekca.key proot.pem proot.key 3650 ||
	    return 1
	# expired: openssl x509 sets no past dates; openssl ca does, with a database of its own
	mkdir -p "$d/ca-db" && : >"$d/ca-db/index.txt" && echo 01 >"$d/ca-db/serial" || return 1
	cat >"$d/ca.cnf" <<EOT
[ca]
default_ca=cross
[cross]
database=$d/ca-db/index.txt
serial=$d/ca-db/serial
new_certs_dir=$d/ca-db
default_md=sha256
policy=any
copy_extensions=none
[any]
organizationName=optional
commonName=supplied
[ext]
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EOT
	openssl ca -batch -config "$d/ca.cnf" -cert "$d/proot.pem" -keyfile "$d/proot.key" \
	    -in "$d/ekca.csr" -startdate 20200101000000Z -enddate 20210101000000Z \
	    -extensions ext -notext -out "$d/ekca-cross-expired.pem" >>"$d/ekpki.log" 2>&1 ||
	    { cat "$d/ekpki.log" >&2; return 1; }
	# an EK certificate of a key we hold, with and without the EKU
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/spare.key" \
	    2>>"$d/ekpki.log" &&
	    openssl req -new -key "$d/spare.key" -subj "/CN=unknown" -out "$d/spare.csr" \
		2>>"$d/ekpki.log" &&
	    openssl x509 -req -in "$d/spare.csr" -CA "$d/ekca.pem" -CAkey "$d/ekca.key" \
		-set_serial 0x7e01 -days 3650 -extfile "$d/ek.ext" -out "$d/spare-ek.pem" \
		2>>"$d/ekpki.log" &&
	    openssl x509 -req -in "$d/spare.csr" -CA "$d/ekca.pem" -CAkey "$d/ekca.key" \
		-set_serial 0x7e02 -days 3650 -extfile "$d/noeku.ext" -out "$d/spare-noeku.pem" \
		2>>"$d/ekpki.log" || { cat "$d/ekpki.log" >&2; return 1; }
	# swtpm_localca: the EK CA signs; its state stays in DIR
	echo 1 >"$d/localca/certserial"
	cat >"$d/localca.conf" <<EOT
statedir = $d/localca
signingkey = $d/ekca.key
issuercert = $d/ekca.pem
certserial = $d/localca/certserial
EOT
	: >"$d/localca.options"
	cat >"$d/swtpm_setup.conf" <<EOT
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $d/localca.conf
create_certs_tool_options = $d/localca.options
active_pcr_banks = sha256
EOT
}

ekpki_read_ek() {
	tpm2_nvread 0x01c00002 -o "$1-rsa.der" 2>/dev/null || return 1
	for idx in 0x01c0000a:p256 0x01c00016:p384; do
		if tpm2_nvreadpublic "${idx%%:*}" >/dev/null 2>&1; then
			tpm2_nvread "${idx%%:*}" -o "$1-${idx#*:}.der" 2>/dev/null || return 1
		fi
	done
}
