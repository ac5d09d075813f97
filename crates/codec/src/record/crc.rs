//! Re-stamping a batch without re-reading its records: CRC-32C is linear, so
//! `crc(header ++ records)` follows from `crc(header)`, `crc(records)` and the
//! operator "append `len(records)` zero bytes", which is a multiplication by
//! `x^(8 * len)` modulo the CRC polynomial. The operator is computed once per
//! batch at close (about log2(len) multiplications) and each stamp then costs
//! one multiplication, independent of the batch size.
//!
//! Polynomials are in the reflected bit order CRC-32C uses: bit 31 holds the
//! coefficient of x^0, bit 0 that of x^31.

/// The CRC-32C (Castagnoli) polynomial, reflected.
const POLY: u32 = 0x82f6_3b78;

/// `a * b mod P`.
const fn mul_mod(a: u32, mut b: u32) -> u32 {
    let mut product = 0u32;
    let mut coeff = 1u32 << 31; // walks a's coefficients from x^0 upwards
    while coeff != 0 {
        if a & coeff != 0 {
            product ^= b;
        }
        // b := b * x mod P
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
        coeff >>= 1;
    }
    product
}

/// `POW[k] = x^(8 * 2^k) mod P`: the operator for 2^k zero bytes.
const POW: [u32; 64] = {
    let mut t = [0u32; 64];
    t[0] = 1 << (31 - 8); // x^8
    let mut k = 1;
    while k < 64 {
        t[k] = mul_mod(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// The operator that appends `len` zero bytes to a CRC state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZerosOperator(u32);

impl ZerosOperator {
    pub(crate) fn new(len: usize) -> Self {
        let mut op = 1u32 << 31; // x^0
        let mut n = len as u64;
        let mut k = 0;
        while n != 0 {
            if n & 1 != 0 {
                op = mul_mod(POW[k], op);
            }
            n >>= 1;
            k += 1;
        }
        Self(op)
    }

    /// `crc(a ++ b)` from `crc(a)` and `crc(b)`, where this operator was made
    /// for `len(b)`.
    pub(crate) fn combine(self, crc_a: u32, crc_b: u32) -> u32 {
        mul_mod(self.0, crc_a) ^ crc_b
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn agrees_with_crc_of_the_concatenation(
            a in proptest::collection::vec(any::<u8>(), 0..100),
            b in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
            let op = ZerosOperator::new(b.len());
            prop_assert_eq!(
                op.combine(crc32c::crc32c(&a), crc32c::crc32c(&b)),
                crc32c::crc32c(&whole)
            );
        }

        #[test]
        fn agrees_with_the_crate_combine(c1: u32, c2: u32, len in 0usize..1 << 40) {
            prop_assert_eq!(
                ZerosOperator::new(len).combine(c1, c2),
                crc32c::crc32c_combine(c1, c2, len)
            );
        }
    }
}
