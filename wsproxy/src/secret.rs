//! Random secrets: the one place berth makes them (login tokens, API keys, app links and
//! logins, app secrets, terminal handle secrets), from the operating system's generator by
//! way of `rand`'s thread-local CSPRNG.

use rand::RngCore;

/// The size of berth's tokens in bytes (256 bits), shown as 64 hex digits.
pub const TOKEN_BYTES: usize = 32;

/// `bytes` random bytes from a cryptographically secure generator, as lowercase hex
/// (`2 × bytes` characters).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn secrets_are_lowercase_hex_of_the_asked_size_and_never_repeat() {
        let t = random_hex(TOKEN_BYTES);
        assert_eq!(t.len(), 64);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(random_hex(20).len(), 40);
        assert_eq!(random_hex(0), "");
        let many: HashSet<String> = (0..1000).map(|_| random_hex(TOKEN_BYTES)).collect();
        assert_eq!(many.len(), 1000);
        // Every nibble value shows up: not a constant or a narrow range.
        let all: String = many.into_iter().collect();
        let digits: HashSet<char> = all.chars().collect();
        assert_eq!(digits.len(), 16);
    }
}
