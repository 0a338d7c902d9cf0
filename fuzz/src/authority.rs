//! Target for `keystation-authority`'s request bodies: step-ca's JSON as its clients send
//! it, and the text inside (serials, times, SSH keys).

use keystation_authority::api::bodies::{
    AddAdmin, AttestedSignRequest, NewJob, RekeyRequest, RevokeRequest, SignRequest, SshPopRequest,
    SshSignRequest,
};
use keystation_authority::text::{
    parse_go_duration, parse_rfc3339, serial_hex, ssh_line_from_base64, ssh_line_from_wire,
};

fn time(text: &str) {
    let _ = parse_go_duration(text);
    let _ = parse_rfc3339(text);
}

/// Byte 0 picks the body type; the rest is its JSON. Whatever parses is fed to the text
/// parsers the server applies to it. Nothing panics; a serial that converts is lower-case
/// hex without leading zeros; an SSH line made from a wire blob names the blob's algorithm.
pub fn authority_bodies(data: &[u8]) {
    let Some((&kind, json)) = data.split_first() else { return };
    match kind % 9 {
        0 => {
            if let Ok(body) = serde_json::from_slice::<SignRequest>(json) {
                body.not_before.as_deref().map(time);
                body.not_after.as_deref().map(time);
            }
        }
        1 => {
            if let Ok(body) = serde_json::from_slice::<RevokeRequest>(json)
                && let Some(hex) = serial_hex(&body.serial)
            {
                assert!(hex == "0" || !hex.starts_with('0'), "no leading zeros");
                assert!(hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            }
        }
        2 => {
            if let Ok(body) = serde_json::from_slice::<SshSignRequest>(json) {
                let _ = ssh_line_from_base64(&body.public_key);
                body.valid_after.as_deref().map(time);
                body.valid_before.as_deref().map(time);
            }
        }
        3 => {
            if let Ok(body) = serde_json::from_slice::<SshPopRequest>(json) {
                body.public_key.as_deref().map(ssh_line_from_base64);
            }
        }
        4 => {
            let _ = serde_json::from_slice::<AttestedSignRequest>(json);
        }
        5 => {
            let _ = serde_json::from_slice::<NewJob>(json);
            let _ = serde_json::from_slice::<AddAdmin>(json);
            let _ = serde_json::from_slice::<RekeyRequest>(json);
        }
        6 => {
            if let Ok(line) = ssh_line_from_wire(json) {
                let name = line.split(' ').next().unwrap_or_default();
                assert!(!name.is_empty() && json.windows(name.len()).any(|w| w == name.as_bytes()));
            }
        }
        _ => {
            if let Ok(text) = core::str::from_utf8(json) {
                time(text);
                let _ = serial_hex(text);
                let _ = ssh_line_from_base64(text);
            }
        }
    }
}
