//! The bit error rate a run proves: errors over bits, and the one-sided upper confidence bound
//! of the rate (Poisson, from the chi-squared quantile: `chi2(p, 2k + 2) / 2n`), which is what
//! a run with few or no errors can claim.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// Confidence of the bound the bench reports.
pub const CONFIDENCE: f64 = 0.95;

/// Upper bound on the bit error rate at `confidence`, from `errors` seen in `bits`.
pub fn ber_upper(errors: u64, bits: u64, confidence: f64) -> f64 {
    if bits == 0 {
        return 1.0;
    }
    let dist = ChiSquared::new(2.0 * (errors as f64 + 1.0)).expect("positive degrees of freedom");
    (dist.inverse_cdf(confidence) / 2.0 / bits as f64).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_errors_gives_the_rule_of_three() {
        // -ln(0.05) = 2.9957: three over n.
        let b = ber_upper(0, 1_000_000, 0.95);
        assert!((b - 2.9957e-6).abs() < 1e-9, "{b}");
    }

    #[test]
    fn errors_raise_the_bound_above_the_estimate() {
        // Poisson upper 95 % limit for 5 events: 10.513.
        let b = ber_upper(5, 1_000_000, 0.95);
        assert!((b - 10.513e-6).abs() < 2e-9, "{b}");
        assert_eq!(ber_upper(3, 0, 0.95), 1.0);
        assert_eq!(ber_upper(1_000, 10, 0.95), 1.0);
    }
}
