//! Signed repository indexes: a minisign signature `stone.index.minisig` beside `stone.index`.
//!
//! The index bytes are unchanged (any V1 reader keeps reading them). The signature's trusted
//! comment, which minisign signs together with the data, carries when the index was signed and
//! when the signature stops being valid, as fields separated by tabs:
//!
//! ```text
//! timestamp:<unix seconds> expires:<unix seconds> file:stone.index
//! ```
//!
//! A client refuses an index whose signature is missing, invalid, made with a key it does not
//! pin, expired, or older than the index it accepted last (a replayed or frozen index). Keys and
//! signatures use the standard minisign formats, so keys made with `minisign -G -W` work and
//! `minisign -V` verifies what moss signs.

use std::{
    fs,
    io::{self, Cursor},
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use minisign::{PublicKey, SecretKey, SecretKeyBox, SignatureBox};

use super::write_atomically;

/// What is appended to the index file name (or URL) to name its signature.
pub const SIGNATURE_SUFFIX: &str = ".minisig";
/// How long a signature made by [`sign_index`] stays valid unless told otherwise.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What the trusted comment of a valid signature says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedClaims {
    /// When the index was signed, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// When the signature expires, in seconds since the Unix epoch.
    pub expires: u64,
}

/// Signing an index failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The secret key file cannot be read.
    #[error("Cannot read the secret key {}: {source}", path.display())]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The secret key file is not an unencrypted minisign secret key.
    #[error(
        "The secret key {} is not usable: {reason}; create an unencrypted minisign key pair with \
         `minisign -G -W -p KEY.pub -s KEY.sec`",
        path.display()
    )]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The index cannot be read or the signature cannot be written.
    #[error("Cannot sign {}: {source}; check that it exists and its directory is writable", path.display())]
    Io {
        /// The index or signature file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// minisign refused to sign.
    #[error("Cannot sign {}: {reason}", path.display())]
    Sign {
        /// The index.
        path: PathBuf,
        /// What minisign said.
        reason: String,
    },
}

/// A public key that is not a minisign public key.
#[derive(Debug, thiserror::Error)]
#[error(
    "{key:?} is not a minisign public key ({reason}); give the base64 key (the second line of a \
     .pub file made by `minisign -G`) or the path of the .pub file"
)]
pub struct KeyError {
    /// The text given.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Why a signed index is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    /// No signature could be fetched.
    #[error(
        "its signature {url} is missing or unreachable ({reason}); the repository must publish \
         stone.index.minisig (`moss index DIR --sign KEY`)"
    )]
    Missing {
        /// Where the signature was looked for.
        url: String,
        /// Why it could not be fetched.
        reason: String,
    },
    /// The signature file does not parse.
    #[error("its signature is malformed ({reason}); the repository must re-sign its index")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The signature was made with a key that is not pinned for the repository.
    #[error(
        "it is signed with key {key_id}, which is not pinned for this repository; if the \
         repository really rotated its key, add the new public key to its configuration"
    )]
    UnpinnedKey {
        /// The key id of the signature, hex.
        key_id: String,
    },
    /// The signature does not match the index (the index or the signature was altered).
    #[error("its signature does not match ({reason}); the index or its signature was altered")]
    Invalid {
        /// What minisign said.
        reason: String,
    },
    /// The trusted comment lacks the timestamp or the expiry.
    #[error(
        "its signature's trusted comment {comment:?} lacks `timestamp:` or `expires:`; the \
         repository must re-sign its index with `moss index DIR --sign KEY`"
    )]
    MissingClaims {
        /// The trusted comment.
        comment: String,
    },
    /// The signature has expired: the index may be frozen by a mirror or an attacker.
    #[error(
        "its signature expired at {} (Unix {expires}; now {now}); the repository must publish a \
         freshly signed index (`moss index DIR --sign KEY`), or the mirror serves a stale copy and \
         another mirror is needed",
        format_utc(*expires)
    )]
    Expired {
        /// Expiry of the signature.
        expires: u64,
        /// The current time.
        now: u64,
    },
    /// No verified signature is kept beside a cached index (it was cached before keys were
    /// pinned, or the signature file was removed).
    #[error(
        "no verified signature is kept beside the cached index ({reason}); refresh the \
         repository with `moss repo update`"
    )]
    NotKept {
        /// Why the kept signature cannot be read.
        reason: String,
    },
    /// The index is older than the one accepted before: a replay.
    #[error(
        "it was signed at {timestamp}, before the index accepted earlier (signed at {accepted}, \
         Unix seconds); an older index is being replayed"
    )]
    Replayed {
        /// When the offered index was signed.
        timestamp: u64,
        /// When the accepted index was signed.
        accepted: u64,
    },
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS UTC`, for messages.
pub fn format_utc(seconds: u64) -> String {
    moss_types::time::format_utc(i64::try_from(seconds).unwrap_or(i64::MAX))
}

/// The trusted comment moss signs: timestamp, expiry and file name, tab separated.
pub fn trusted_comment(claims: SignedClaims, file_name: &str) -> String {
    format!(
        "timestamp:{}\texpires:{}\tfile:{file_name}",
        claims.timestamp, claims.expires
    )
}

/// Parse the timestamp and expiry of a trusted comment (`key:value` fields separated by tabs or
/// spaces); `None` when one is missing or not a number.
pub fn parse_claims(comment: &str) -> Option<SignedClaims> {
    let mut timestamp = None;
    let mut expires = None;
    for field in comment.split_whitespace() {
        match field.split_once(':') {
            Some(("timestamp", value)) => timestamp = Some(value.parse().ok()?),
            Some(("expires", value)) => expires = Some(value.parse().ok()?),
            _ => {}
        }
    }
    Some(SignedClaims {
        timestamp: timestamp?,
        expires: expires?,
    })
}

/// Sign the bytes of an index with a secret key in minisign's file format; returns the text of
/// the `.minisig` file.
pub fn sign_bytes(
    data: &[u8],
    secret_key: &str,
    claims: SignedClaims,
    file_name: &str,
) -> Result<String, String> {
    let key = secret_key_from_text(secret_key)?;
    let comment = trusted_comment(claims, file_name);
    let signature = minisign::sign(
        None,
        &key,
        Cursor::new(data),
        Some(&comment),
        Some("signature from moss secret key"),
    )
    .map_err(|error| error.to_string())?;
    Ok(signature.into_string())
}

fn secret_key_from_text(text: &str) -> Result<SecretKey, String> {
    let key_box = SecretKeyBox::from_string(text).map_err(|error| error.to_string())?;
    let key = match key_box.into_unencrypted_secret_key() {
        Ok(key) => key,
        Err(error) => legacy_unencrypted_key(text).ok_or_else(|| error.to_string())?,
    };
    if key.is_encrypted() {
        return Err("the key is encrypted with a password".to_owned());
    }
    Ok(key)
}

/// The reference `minisign` (0.11, as in Debian 12) writes unencrypted secret keys (`-G -W`)
/// with an all-zero checksum, which the minisign crate rejects; accept exactly that shape.
fn legacy_unencrypted_key(text: &str) -> Option<SecretKey> {
    // sig_alg 2, kdf_alg 2, chk_alg 2, salt 32, opslimit 8, memlimit 8, keynum 8, sk 64, chk 32.
    const LEN: usize = 158;
    let encoded = text.lines().nth(1)?.trim();
    let bytes = decode_base64(encoded)?;
    let unencrypted = bytes.len() == LEN
        && bytes[2..4] == [0, 0]
        && bytes[LEN - 32..].iter().all(|&byte| byte == 0);
    if !unencrypted {
        return None;
    }
    SecretKey::from_bytes(&bytes).ok()
}

/// Standard base64 with padding.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |byte: u8| -> Option<u32> {
        Some(u32::from(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let padding = chunk.iter().rev().take_while(|&&byte| byte == b'=').count();
        if padding > 2 {
            return None;
        }
        let mut group = 0u32;
        for &byte in &chunk[..4 - padding] {
            group = (group << 6) | value(byte)?;
        }
        group <<= 6 * padding as u32;
        let decoded = group.to_be_bytes();
        out.extend_from_slice(&decoded[1..4 - padding]);
    }
    Some(out)
}

/// Sign `index` with the secret key file `secret_key`, valid for `validity` from now; writes
/// `<index>.minisig` atomically and returns its path.
pub fn sign_index(
    index: &Path,
    secret_key: &Path,
    validity: Duration,
) -> Result<PathBuf, SignError> {
    let key_text = fs::read_to_string(secret_key).map_err(|source| SignError::ReadKey {
        path: secret_key.to_owned(),
        source,
    })?;
    secret_key_from_text(&key_text).map_err(|reason| SignError::InvalidKey {
        path: secret_key.to_owned(),
        reason,
    })?;
    let data = fs::read(index).map_err(|source| SignError::Io {
        path: index.to_owned(),
        source,
    })?;
    let timestamp = unix_now();
    let claims = SignedClaims {
        timestamp,
        expires: timestamp.saturating_add(validity.as_secs()),
    };
    let file_name = index
        .file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    let text =
        sign_bytes(&data, &key_text, claims, &file_name).map_err(|reason| SignError::Sign {
            path: index.to_owned(),
            reason,
        })?;
    let path = signature_path(index);
    write_atomically(&path, |file| io::Write::write_all(file, text.as_bytes())).map_err(
        |source| SignError::Io {
            path: path.clone(),
            source,
        },
    )?;
    Ok(path)
}

/// `<path>.minisig`.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(SIGNATURE_SUFFIX);
    PathBuf::from(name)
}

/// Normalise a public key: the base64 key itself, or the text of a minisign `.pub` file (an
/// `untrusted comment:` line, then the key). Returns the base64 key.
pub fn parse_public_key(text: &str) -> Result<String, KeyError> {
    let candidate = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("untrusted comment:"))
        .unwrap_or("");
    let error = |reason: String| KeyError {
        key: text.trim().to_owned(),
        reason,
    };
    let key = PublicKey::from_base64(candidate).map_err(|error_| error(error_.to_string()))?;
    Ok(key.to_base64())
}

/// Hex key id (as minisign prints it) of a public key.
pub fn key_id(public_key: &str) -> Option<String> {
    let key = PublicKey::from_base64(public_key).ok()?;
    let bytes = key.to_bytes();
    // Algorithm (2 bytes), key id (8 bytes, little-endian), key (32 bytes).
    let id = bytes.get(2..10)?;
    Some(id.iter().rev().map(|byte| format!("{byte:02X}")).collect())
}

/// Verify `data` (an index) against the text of its `.minisig` with any of the pinned keys, and
/// check the expiry against `now` and the timestamp against the one `accepted` before.
pub fn verify_bytes(
    data: &[u8],
    signature: &str,
    pinned: &[String],
    now: u64,
    accepted: Option<u64>,
) -> Result<SignedClaims, SignatureProblem> {
    let signature_box =
        SignatureBox::from_string(signature).map_err(|error| SignatureProblem::Malformed {
            reason: error.to_string(),
        })?;
    let key_num = signature_box.keynum().to_vec();
    let key = pinned
        .iter()
        .filter_map(|key| PublicKey::from_base64(key).ok())
        .find(|key| key.to_bytes().get(2..10) == Some(key_num.as_slice()))
        .ok_or_else(|| SignatureProblem::UnpinnedKey {
            key_id: key_num
                .iter()
                .rev()
                .map(|byte| format!("{byte:02X}"))
                .collect(),
        })?;
    minisign::verify(&key, &signature_box, Cursor::new(data), true, false, true).map_err(
        |error| SignatureProblem::Invalid {
            reason: error.to_string(),
        },
    )?;
    let comment = signature_box
        .trusted_comment()
        .map_err(|error| SignatureProblem::Malformed {
            reason: error.to_string(),
        })?;
    let claims = parse_claims(&comment).ok_or(SignatureProblem::MissingClaims {
        comment: comment.clone(),
    })?;
    if claims.expires < now {
        return Err(SignatureProblem::Expired {
            expires: claims.expires,
            now,
        });
    }
    if let Some(accepted) = accepted
        && claims.timestamp < accepted
    {
        return Err(SignatureProblem::Replayed {
            timestamp: claims.timestamp,
            accepted,
        });
    }
    Ok(claims)
}

/// Create an unencrypted key pair in minisign's file formats: `(public key file, secret key
/// file)` texts. For tests and tooling; `minisign -G -W` makes the same files.
pub fn generate_key_pair() -> Result<(String, String), String> {
    let pair = minisign::KeyPair::generate_unencrypted_keypair().map_err(|e| e.to_string())?;
    let public = pair.pk.to_box().map_err(|e| e.to_string())?.into_string();
    let secret = pair
        .sk
        .to_box(None)
        .map_err(|e| e.to_string())?
        .into_string();
    Ok((public, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip() {
        let claims = SignedClaims {
            timestamp: 10,
            expires: 20,
        };
        assert_eq!(
            parse_claims(&trusted_comment(claims, "stone.index")),
            Some(claims)
        );
        assert_eq!(parse_claims("timestamp:1"), None);
        assert_eq!(parse_claims("timestamp:x expires:2"), None);
    }

    #[test]
    fn public_keys_from_files_or_base64() {
        let (public, _) = generate_key_pair().unwrap();
        let base64 = parse_public_key(&public).unwrap();
        assert_eq!(parse_public_key(&base64).unwrap(), base64);
        assert!(public.contains(&key_id(&base64).unwrap()));
        assert!(parse_public_key("not a key").is_err());
    }

    #[test]
    fn utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc(1_767_225_599), "2025-12-31 23:59:59 UTC");
        assert_eq!(format_utc(4_107_542_400), "2100-03-01 00:00:00 UTC");
    }

    #[test]
    fn base64_decoding() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ==").unwrap(), b"M");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("TQ=").is_none());
        assert!(decode_base64("T!==").is_none());
    }
}
