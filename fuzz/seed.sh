#!/bin/sh
# Seeds the local corpora (fuzz/corpus/, not in git) with the repository's own examples:
# the shipped config, the RFC 6287 suites, and privacyIDEA/LinOTP answers. Run from fuzz/.
set -eu
mkdir -p corpus/config corpus/ocra_suite corpus/remote_json corpus/contact corpus/module_args
cp ../conf/tessera.toml corpus/config/shipped.toml
# [[policy]] rules (the shipped file has them commented out).
cat > corpus/config/policy.toml <<'TOML'
[[policy]]
service = ["sshd", "ssh*"]
rhost = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
action = "skip"
[[policy]]
group = "admins"
grace = 300
[[policy]]
user = "guest?"
tty = ":*"
action = "deny"
TOML
i=0
for s in OCRA-1:HOTP-SHA1-6:QN08 OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1 OCRA-1:HOTP-SHA512-8:QN08-T1M \
    OCRA-1:HOTP-SHA256-8:QA08 OCRA-1:HOTP-SHA512-8:QA10-T1M OCRA-1:HOTP-SHA512-8:C-QH40-PSHA256-S128-T30S; do
    i=$((i + 1)); printf '%s\0\1\2\3\4\5\6\7%s' "$s" 12345678 > corpus/ocra_suite/seed$i
done
# remote_json: linotp (1 byte), simplecheck (1 byte), status None (1 byte) = 200, then the body
j() { i=$((i + 1)); printf "$1"'%s' "$2" > corpus/remote_json/seed$i; }
j '\0\0\0' '{"result":{"status":true,"value":true,"authentication":"ACCEPT"},"detail":{"serial":"HOTP1","type":"hotp"}}'
j '\0\0\0' '{"result":{"status":true,"value":false,"authentication":"CHALLENGE"},"detail":{"transaction_id":"0123","multi_challenge":[{"message":"otp?","serial":"S","type":"hotp","client_mode":"interactive"},{"message":"phone","client_mode":"poll"}]}}'
j '\0\0\0' '{"result":{"status":false,"error":{"code":904,"message":"user not found"}}}'
j '\0\0\0' '{"result":{"status":true,"value":false},"detail":{"challenge_status":"declined"}}'
j '\1\0\0' '{"result":{"status":true,"value":false},"detail":{"transactionid":"123","message":"otp?","tokentype":"hmac"}}'
j '\1\1\0' ':-( 1234 enter otp'
j '\1\1\0' ':-)'
printf 'alice@example.org' > corpus/contact/mail
printf '+49 170-1234567' > corpus/contact/phone
