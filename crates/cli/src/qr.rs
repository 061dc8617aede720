//! `--qr`: the otpauth URI as a QR code drawn with Unicode half blocks, two modules per
//! character cell, light on dark as most terminals are (phone scanners read inverted codes).

use super::{CliResult, Failure};
use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

pub fn render(text: &str) -> CliResult<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| Failure::invalid(format!("QR code: {e}")))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_becomes_a_square_of_half_blocks() {
        let uri = "otpauth://totp/tessera:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
                   &issuer=tessera&algorithm=SHA1&digits=6&period=30";
        let art = render(uri).unwrap();
        let lines: Vec<&str> = art.lines().collect();
        let width = lines[0].chars().count();
        // Two modules per line: the code is as wide as about twice its line count.
        assert!(
            lines.len() * 2 >= width && lines.len() * 2 <= width + 1,
            "{art}"
        );
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert!(art
            .chars()
            .all(|c| " \u{2580}\u{2584}\u{2588}\n".contains(c)));
    }
}
