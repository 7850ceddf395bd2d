//! Envoy's `FractionalPercent` evaluation: a request is selected when a random value modulo
//! the denominator is below the numerator (`ProtobufPercentHelper::evaluateFractionalPercent`).
use crate::config::snapshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percent {
    pub numerator: u32,
    pub denominator: u32,
}

impl Percent {
    /// `at` names the field in errors; the denominator must be 100, 10000 or 1000000.
    pub fn compile(p: &snapshot::Percent, at: &str) -> Result<Percent, String> {
        if !matches!(p.denominator, 100 | 10_000 | 1_000_000) {
            return Err(format!(
                "{at}.denominator: {} is not HUNDRED, TEN_THOUSAND or MILLION",
                p.denominator
            ));
        }
        Ok(Percent {
            numerator: p.numerator,
            denominator: p.denominator,
        })
    }

    /// The same denominator with the numerator capped by `n` (header-controlled percentages:
    /// the header may lower the configured numerator, never raise it).
    pub fn capped(self, n: u64) -> Percent {
        Percent {
            numerator: n.min(self.numerator as u64) as u32,
            denominator: self.denominator,
        }
    }

    /// True for the fraction of `random` values the percentage selects.
    #[inline]
    pub fn hit(self, random: u64) -> bool {
        if self.numerator == 0 {
            return false;
        }
        random % u64::from(self.denominator) < u64::from(self.numerator)
    }
}
