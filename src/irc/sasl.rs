//! SASL logins (IRCv3 sasl-3.1/3.2): which mechanism to use, and the exchange of each.
//!
//! - `EXTERNAL`: the TLS client certificate (`irc.client_cert`) is the credential; services
//!   know it by its fingerprint (CertFP).
//! - `SCRAM-SHA-256` (RFC 7677) and `SCRAM-SHA-1` (RFC 5802): the password never crosses the
//!   wire, and the server proves it knows it too (a server that cannot is refused).
//! - `PLAIN` (RFC 4616): account and password, protected by TLS alone.
//!
//! With `irc.sasl_mechanism = "auto"`, [`choose`] takes the strongest mechanism both sides
//! have, in that order. An exchange is a [`Login`]: fed each server message (decoded), it
//! gives the next client message. It does no I/O and draws its nonce from outside, so the
//! RFCs' example exchanges are its tests.

use base64::Engine;
use hmac::{KeyInit, Mac};
use sha2::Digest;

use crate::config::SaslMechanism;

/// The most PBKDF2 iterations a server may ask for: far above what any service uses (4,096 to
/// a few tens of thousands), low enough that a hostile server cannot stall lever for long.
const MAX_ITERATIONS: u32 = 1_000_000;

/// A mechanism lever can log in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    External,
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    /// Strongest first: the order "auto" prefers.
    const STRONGEST_FIRST: [Mechanism; 4] = [
        Mechanism::External,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::External => "EXTERNAL",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// What a failed login with this mechanism asks the operator to check.
    pub fn what_to_check(self) -> &'static str {
        match self {
            Mechanism::External => {
                "services did not accept the client certificate: add its fingerprint (logged \
                 as \"presenting the client certificate\") to lever's account (Atheme, Anope: \
                 /msg NickServ CERT ADD <fingerprint>), or check irc.client_cert and \
                 irc.client_key"
            }
            _ => "check irc.sasl_account and LEVER_IRC__SASL_PASSWORD",
        }
    }

    fn from_setting(setting: SaslMechanism) -> Option<Mechanism> {
        match setting {
            SaslMechanism::Auto => None,
            SaslMechanism::External => Some(Mechanism::External),
            SaslMechanism::ScramSha256 => Some(Mechanism::ScramSha256),
            SaslMechanism::ScramSha1 => Some(Mechanism::ScramSha1),
            SaslMechanism::Plain => Some(Mechanism::Plain),
        }
    }
}

/// What lever has to log in with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials {
    /// A client certificate is configured (for EXTERNAL).
    pub certificate: bool,
    /// An account and password are configured (for SCRAM and PLAIN).
    pub password: bool,
}

/// The mechanism to log in with, given what the server offers (`sasl=` of CAP LS 302: a comma
/// list, or empty when it does not say) and the setting; else why there is none.
pub fn choose(
    setting: SaslMechanism,
    have: Credentials,
    offered: &str,
) -> Result<Mechanism, String> {
    let offered: Vec<&str> = offered.split(',').filter(|m| !m.is_empty()).collect();
    // sasl-3.1 servers do not list their mechanisms: assume what was asked for is there.
    let on_offer = |m: Mechanism| offered.is_empty() || offered.contains(&m.name());
    let usable = |m: Mechanism| match m {
        Mechanism::External => have.certificate,
        _ => have.password,
    };
    if let Some(wanted) = Mechanism::from_setting(setting) {
        if !on_offer(wanted) {
            return Err(format!(
                "the server offers SASL {} but not {} (irc.sasl_mechanism); set \"auto\" to use the best of those",
                offered.join(","),
                wanted.name()
            ));
        }
        return Ok(wanted);
    }
    let strongest = Mechanism::STRONGEST_FIRST
        .into_iter()
        .find(|m| usable(*m) && on_offer(*m));
    strongest.ok_or_else(|| {
        let mut have_list = Vec::new();
        if have.certificate {
            have_list.push("EXTERNAL (irc.client_cert)");
        }
        if have.password {
            have_list.push("SCRAM-SHA-256, SCRAM-SHA-1, PLAIN (irc.sasl_account)");
        }
        format!(
            "the server offers SASL {} and lever can do {}: no mechanism in common",
            offered.join(","),
            have_list.join(", ")
        )
    })
}

/// One login in progress.
pub struct Login {
    mechanism: Mechanism,
    step: Step,
}

enum Step {
    /// Waiting for the server's first (empty) message.
    Start,
    /// SCRAM: sent the client-first message; waiting for the server-first.
    ScramFirst { bare: String },
    /// SCRAM: sent the proof; waiting for the server's signature.
    ScramFinal { server_signature: Vec<u8> },
    /// Nothing more to send: the server's numeric ends it.
    Done,
}

/// Why a login was given up on this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abort(pub String);

impl Login {
    pub fn new(mechanism: Mechanism) -> Login {
        Login {
            mechanism,
            step: Step::Start,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The response to the server's message `challenge` (decoded; empty for `+`), with the
    /// account, password and (for SCRAM) a fresh client nonce.
    pub fn respond(
        &mut self,
        challenge: &[u8],
        account: &str,
        password: &str,
        nonce: &str,
    ) -> Result<Vec<u8>, Abort> {
        match (&self.step, self.mechanism) {
            (Step::Start, Mechanism::Plain) => {
                self.step = Step::Done;
                Ok(format!("{account}\0{account}\0{password}").into_bytes())
            }
            // The certificate speaks; the message names no one (the account it maps to).
            (Step::Start, Mechanism::External) => {
                self.step = Step::Done;
                Ok(Vec::new())
            }
            (Step::Start, _) => {
                let bare = format!("n={},r={nonce}", sasl_name(account));
                let first = format!("n,,{bare}");
                self.step = Step::ScramFirst { bare };
                Ok(first.into_bytes())
            }
            (Step::ScramFirst { bare }, mechanism) => {
                let server_first = std::str::from_utf8(challenge)
                    .map_err(|_| Abort("the server's SCRAM message is not UTF-8".into()))?;
                let (final_message, server_signature) =
                    scram_final(mechanism, bare, server_first, password, nonce)?;
                self.step = Step::ScramFinal { server_signature };
                Ok(final_message.into_bytes())
            }
            (Step::ScramFinal { server_signature }, _) => {
                let server_final = std::str::from_utf8(challenge).unwrap_or_default();
                let fields = attributes(server_final);
                if let Some(error) = fields.iter().find(|(k, _)| *k == 'e') {
                    return Err(Abort(format!("the server refused the login: {}", error.1)));
                }
                let verifier = fields
                    .iter()
                    .find(|(k, _)| *k == 'v')
                    .and_then(|(_, v)| base64::engine::general_purpose::STANDARD.decode(v).ok());
                let proven = verifier.is_some_and(|v| {
                    v.len() == server_signature.len()
                        && subtle::ConstantTimeEq::ct_eq(&v[..], &server_signature[..]).into()
                });
                if !proven {
                    return Err(Abort(
                        "the server could not prove it knows lever's password (SCRAM server \
                         signature wrong): not logging in to it"
                            .into(),
                    ));
                }
                self.step = Step::Done;
                Ok(Vec::new())
            }
            (Step::Done, _) => Err(Abort(
                "the server sent more after the login was complete".into(),
            )),
        }
    }
}

/// A SCRAM client nonce: 24 unpredictable bytes, printable and free of ','.
pub fn new_nonce() -> Result<String, Abort> {
    let bytes = crate::infra::random::bytes::<24>()
        .map_err(|e| Abort(format!("no random bytes for the SCRAM nonce: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `=` and `,` escaped as SCRAM's saslname wants them.
fn sasl_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// `k=v,k=v` → [(k, v)].
fn attributes(message: &str) -> Vec<(char, &str)> {
    message
        .split(',')
        .filter_map(|field| {
            let mut chars = field.chars();
            let key = chars.next()?;
            field.get(1..)?.strip_prefix('=').map(|v| (key, v))
        })
        .collect()
}

/// The client-final message for `server_first`, and the signature the server must answer with.
fn scram_final(
    mechanism: Mechanism,
    client_first_bare: &str,
    server_first: &str,
    password: &str,
    client_nonce: &str,
) -> Result<(String, Vec<u8>), Abort> {
    let fields = attributes(server_first);
    let get = |k: char| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    if get('m').is_some() || server_first.starts_with("m=") {
        return Err(Abort(
            "the server asks for a SCRAM extension lever does not know".into(),
        ));
    }
    let nonce = get('r')
        .filter(|r| r.starts_with(client_nonce) && r.len() > client_nonce.len())
        .ok_or_else(|| Abort("the server's SCRAM nonce does not extend lever's".into()))?;
    let salt = get('s')
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Abort("the server's SCRAM salt is missing or not base64".into()))?;
    let iterations: u32 = get('i')
        .and_then(|i| i.parse().ok())
        .filter(|i| (1..=MAX_ITERATIONS).contains(i))
        .ok_or_else(|| {
            Abort(format!(
                "the server's SCRAM iteration count is missing or beyond 1 to {MAX_ITERATIONS}"
            ))
        })?;
    let password = stringprep::saslprep(password)
        .map_err(|_| Abort("irc.sasl_password has characters SASLprep forbids".into()))?;
    // "biws" is base64 of the GS2 header "n,,": no channel binding, no authorization identity.
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let (proof, server_signature) = match mechanism {
        Mechanism::ScramSha1 => proofs::<sha1::Sha1, hmac::Hmac<sha1::Sha1>>(
            password.as_bytes(),
            &salt,
            iterations,
            &auth_message,
        ),
        _ => proofs::<sha2::Sha256, hmac::Hmac<sha2::Sha256>>(
            password.as_bytes(),
            &salt,
            iterations,
            &auth_message,
        ),
    };
    let proof = base64::engine::general_purpose::STANDARD.encode(proof);
    Ok((format!("{without_proof},p={proof}"), server_signature))
}

/// RFC 5802 §3: the ClientProof, and the ServerSignature to expect.
/// `H` the hash, `M` its HMAC.
fn proofs<H, M>(password: &[u8], salt: &[u8], iterations: u32, auth: &str) -> (Vec<u8>, Vec<u8>)
where
    H: Digest,
    M: Mac + KeyInit + hmac::digest::FixedOutput + Clone,
{
    let mut salted = vec![0u8; <H as Digest>::output_size()];
    pbkdf2::pbkdf2::<M>(password, salt, iterations, &mut salted)
        .expect("HMAC takes a key of any length");
    let hmac = |key: &[u8], data: &[u8]| {
        let mut mac = <M as KeyInit>::new_from_slice(key).expect("any key length");
        Mac::update(&mut mac, data);
        mac.finalize().into_bytes().to_vec()
    };
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = H::digest(&client_key).to_vec();
    let client_signature = hmac(&stored_key, auth.as_bytes());
    let proof = client_key
        .iter()
        .zip(&client_signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac(&salted, b"Server Key");
    (proof, hmac(&server_key, auth.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Credentials = Credentials {
        certificate: true,
        password: true,
    };
    const PASSWORD: Credentials = Credentials {
        certificate: false,
        password: true,
    };

    #[test]
    fn auto_takes_the_strongest_mechanism_both_sides_have() {
        let auto = |have, offered| choose(SaslMechanism::Auto, have, offered).map(Mechanism::name);
        assert_eq!(auto(BOTH, "PLAIN,EXTERNAL,SCRAM-SHA-256"), Ok("EXTERNAL"));
        assert_eq!(
            auto(PASSWORD, "PLAIN,EXTERNAL,SCRAM-SHA-256"),
            Ok("SCRAM-SHA-256")
        );
        assert_eq!(auto(PASSWORD, "PLAIN,SCRAM-SHA-1"), Ok("SCRAM-SHA-1"));
        assert_eq!(auto(PASSWORD, "PLAIN,AUTHCOOKIE"), Ok("PLAIN"));
        // A sasl-3.1 server lists nothing: the strongest lever can do.
        assert_eq!(auto(PASSWORD, ""), Ok("SCRAM-SHA-256"));
        let none = auto(PASSWORD, "EXTERNAL,ECDSA-NIST256P-CHALLENGE").unwrap_err();
        assert!(none.contains("no mechanism in common"), "{none}");
        let set = choose(SaslMechanism::ScramSha256, PASSWORD, "PLAIN,EXTERNAL").unwrap_err();
        assert!(set.contains("not SCRAM-SHA-256"), "{set}");
        assert_eq!(
            choose(SaslMechanism::Plain, PASSWORD, "PLAIN,SCRAM-SHA-256"),
            Ok(Mechanism::Plain)
        );
    }

    /// Runs a SCRAM exchange against the server messages of an RFC example, checking each of
    /// lever's messages against the RFC's.
    fn exchange(mechanism: Mechanism, nonce: &str, messages: [&str; 4]) {
        let [client_first, server_first, client_final, server_final] = messages;
        let mut login = Login::new(mechanism);
        let say = |login: &mut Login, challenge: &str| {
            let out = login.respond(challenge.as_bytes(), "user", "pencil", nonce);
            String::from_utf8(out.unwrap()).unwrap()
        };
        assert_eq!(say(&mut login, ""), client_first);
        assert_eq!(say(&mut login, server_first), client_final);
        assert_eq!(say(&mut login, server_final), "");
    }

    /// RFC 7677 §3's example exchange (user "user", password "pencil").
    #[test]
    fn scram_sha_256_gives_rfc_7677s_example_proof_and_checks_the_server() {
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        exchange(
            Mechanism::ScramSha256,
            "rOprNGfwEbeRWgbNEkqO",
            [
                "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                server_first,
                "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            ],
        );
        // A server that does not know the password cannot sign: refused.
        let mut login = Login::new(Mechanism::ScramSha256);
        let nonce = "rOprNGfwEbeRWgbNEkqO";
        login.respond(b"", "user", "pencil", nonce).unwrap();
        login
            .respond(server_first.as_bytes(), "user", "pencil", nonce)
            .unwrap();
        let forged = login.respond(
            b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
            "user",
            "pencil",
            nonce,
        );
        assert!(forged.unwrap_err().0.contains("could not prove"));
    }

    /// RFC 5802 §5's example exchange.
    #[test]
    fn scram_sha_1_gives_rfc_5802s_example_proof() {
        exchange(
            Mechanism::ScramSha1,
            "fyko+d2lbbFgONRv9qkxdawL",
            [
                "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
                "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,\
                 p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
                "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
            ],
        );
    }

    #[test]
    fn a_hostile_server_first_message_is_refused_with_why() {
        let refused = |server_first: &str| {
            let mut login = Login::new(Mechanism::ScramSha256);
            login.respond(b"", "user", "pencil", "abc").unwrap();
            login
                .respond(server_first.as_bytes(), "user", "pencil", "abc")
                .unwrap_err()
                .0
        };
        assert!(refused("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096").contains("nonce"));
        assert!(refused("r=abc,s=QSXCR+Q6sek8bf92,i=4096").contains("nonce"));
        assert!(refused("r=abcdef,s=,i=4096").contains("salt"));
        assert!(refused("r=abcdef,s=QSXCR+Q6sek8bf92,i=0").contains("iteration"));
        assert!(refused("r=abcdef,s=QSXCR+Q6sek8bf92,i=99999999").contains("iteration"));
        assert!(refused("m=ext,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096").contains("extension"));
        let mut login = Login::new(Mechanism::ScramSha256);
        login.respond(b"", "user", "pencil", "abc").unwrap();
        login
            .respond(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=1", "user", "pencil", "abc")
            .unwrap();
        let error = login.respond(b"e=invalid-proof", "user", "pencil", "abc");
        assert!(error.unwrap_err().0.contains("invalid-proof"));
    }

    #[test]
    fn plain_and_external_say_what_they_must() {
        let mut plain = Login::new(Mechanism::Plain);
        assert_eq!(
            plain.respond(b"", "lever", "s3cret", "").unwrap(),
            b"lever\0lever\0s3cret"
        );
        let mut external = Login::new(Mechanism::External);
        assert_eq!(external.respond(b"", "", "", "").unwrap(), b"");
        assert!(external.respond(b"", "", "", "").is_err());
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
    }
}
