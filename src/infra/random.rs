//! Unpredictable bytes from the kernel, for what must not be guessed: the deploy page's form
//! key, SASL SCRAM's client nonce.

use std::io::Read;

/// `N` bytes from `/dev/urandom`; the error says why there are none.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let (a, b) = (super::bytes::<32>().unwrap(), super::bytes::<32>().unwrap());
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }
}
