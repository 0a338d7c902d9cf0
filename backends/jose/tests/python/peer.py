"""JOSE peer for keystation-jose's interoperability test: PyJWT and jwcrypto make and check
tokens and JWEs. Reads one JSON request on stdin, writes one JSON answer on stdout."""
import json
import sys

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwcrypto import jwa, jwe, jwk, jws

# jwcrypto refuses more than 16384 PBKDF2 iterations by default; step writes 100000.
jwa.default_max_pbkdf2_iterations = 1_000_000


def private_key(alg):
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_tokens(req):
    out = []
    for alg in req["algs"]:
        key = private_key(alg)
        public = jwk.JWK.from_pyca(key.public_key())
        kid = public.thumbprint()
        public_json = json.loads(public.export_public())
        public_json["alg"] = alg
        public_json["kid"] = kid
        pyjwt = jwt.encode(req["claims"], key, algorithm=alg, headers={"kid": kid})
        signer = jws.JWS(json.dumps(req["claims"]).encode())
        signer.add_signature(
            jwk.JWK.from_pyca(key), alg=alg, protected=json.dumps({"alg": alg, "kid": kid, "typ": "JWT"})
        )
        out.append(
            {
                "alg": alg,
                "jwk": public_json,
                "thumbprint": kid,
                "pyjwt": pyjwt,
                "jwcrypto": signer.serialize(compact=True),
            }
        )
    return out


def verify(req):
    out = []
    for item in req["tokens"]:
        key = jwt.PyJWK(item["jwk"]).key
        try:
            claims = jwt.decode(
                item["token"], key, algorithms=[item["alg"]], audience=item["aud"],
                options={"verify_exp": True},
            )
            out.append({"ok": True, "sub": claims.get("sub")})
        except Exception as e:  # noqa: BLE001 - reported to the Rust side
            out.append({"ok": False, "error": repr(e)})
    return out


def jwe_decrypt(req):
    token = jwe.JWE()
    token.deserialize(req["jwe"], key=jwk.JWK.from_password(req["password"]))
    header = token.jose_header
    key = jwk.JWK.from_json(token.payload.decode())
    return {"header": header, "thumbprint": key.thumbprint(), "has_private": key.has_private}


def jwe_encrypt(req):
    key = jwk.JWK.generate(kty="EC", crv="P-256")
    protected = {"alg": "PBES2-HS256+A128KW", "enc": "A256GCM", "cty": "jwk+json", "p2c": req["p2c"]}
    token = jwe.JWE(key.export_private().encode(), json.dumps(protected))
    token.add_recipient(jwk.JWK.from_password(req["password"]))
    return {"jwe": token.serialize(compact=True), "thumbprint": key.thumbprint()}


def main():
    req = json.load(sys.stdin)
    handler = {"make_tokens": make_tokens, "verify": verify, "jwe_decrypt": jwe_decrypt, "jwe_encrypt": jwe_encrypt}
    json.dump(handler[req["op"]](req), sys.stdout)


if __name__ == "__main__":
    main()
