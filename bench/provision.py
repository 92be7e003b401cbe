#!/usr/bin/env python3
"""Bulk account provisioning for scripts/bench-compare.sh, without one
process (or one connection) per account.

  provision.py prosody DATA_PATH DOMAIN N [ITERATIONS]
      Writes Prosody's internal_hashed account files
      (DATA_PATH/<host>/accounts/<user>.dat), exactly what
      mod_auth_internal_hashed's create_user writes: SCRAM-SHA-1 stored and
      server keys (hex), a UUID salt and the iteration count (Prosody 0.12's
      default: 10000). The server must not be running.

  provision.py piefxis DOMAIN N
      Prints a XEP-0227 (PIEFXIS) file with the accounts and their plaintext
      passwords, for `ejabberdctl import_piefxis`.

Account I is userI with password passI (I = 1..N).
"""
import hashlib
import hmac
import os
import sys
import uuid


def prosody_encode(s):
    # util.datamanager's encode: every byte outside [a-zA-Z0-9] becomes %xx
    # (lowercase hex).
    out = []
    for ch in s:
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append("%%%02x" % ord(ch))
    return "".join(out)


def prosody(data_path, domain, n, iterations):
    accounts = os.path.join(data_path, prosody_encode(domain), "accounts")
    os.makedirs(accounts, exist_ok=True)
    for i in range(1, n + 1):
        password = f"pass{i}".encode()
        salt = str(uuid.uuid4())
        salted = hashlib.pbkdf2_hmac("sha1", password, salt.encode(), iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
        stored_key = hashlib.sha1(client_key).hexdigest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha1).hexdigest()
        with open(os.path.join(accounts, prosody_encode(f"user{i}") + ".dat"), "w") as f:
            f.write(
                "return {\n"
                f'\t["iteration_count"] = {iterations};\n'
                f'\t["salt"] = "{salt}";\n'
                f'\t["server_key"] = "{server_key}";\n'
                f'\t["stored_key"] = "{stored_key}";\n'
                "};\n"
            )


def piefxis(domain, n):
    w = sys.stdout.write
    w("<?xml version='1.0' encoding='UTF-8'?>\n")
    w("<server-data xmlns='urn:xmpp:pie:0'>\n")
    w(f"  <host jid='{domain}'>\n")
    for i in range(1, n + 1):
        w(f"    <user name='user{i}' password='pass{i}'/>\n")
    w("  </host>\n</server-data>\n")


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "prosody":
        iterations = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
        prosody(sys.argv[2], sys.argv[3], int(sys.argv[4]), iterations)
    elif len(sys.argv) == 4 and sys.argv[1] == "piefxis":
        piefxis(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
