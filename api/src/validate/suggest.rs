//! "Did you mean …?": the closest known name to a misspelt one.

/// The candidate closest to `word`, if one is close enough to be a likely typo: the same name
/// in another case (`stepweight` → `stepWeight`), else the smallest edit distance within a
/// third of the word's length (at least 2 edits, at most 4).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_lowercase();
    let limit = (word.chars().count() / 3).clamp(2, 4);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let distance = if candidate.to_lowercase() == lower {
            0
        } else {
            strsim::damerau_levenshtein(&lower, &candidate.to_lowercase())
        };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::closest;

    const FIELDS: [&str; 4] = ["stepWeight", "stepWeights", "maxWeight", "interval"];

    #[test]
    fn case_and_typos() {
        assert_eq!(closest("stepweight", FIELDS), Some("stepWeight"));
        assert_eq!(closest("stepWieght", FIELDS), Some("stepWeight"));
        assert_eq!(closest("maxweigth", FIELDS), Some("maxWeight"));
        assert_eq!(closest("intervall", FIELDS), Some("interval"));
    }

    #[test]
    fn nothing_close() {
        assert_eq!(closest("replicas", FIELDS), None);
        assert_eq!(closest("x", FIELDS), None);
    }
}
