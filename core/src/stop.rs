//! Stop sequences: text that could still become a stop sequence is held back, so no part of
//! a stop sequence ever reaches the caller.

#[derive(Debug, Default)]
pub(crate) struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What to emit after a piece of text was added.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct StopOutcome {
    pub emit: String,
    pub stopped: bool,
}

impl StopMatcher {
    pub(crate) fn new(stops: Vec<String>) -> Self {
        StopMatcher {
            stops,
            held: String::new(),
        }
    }

    /// Adds generated text; returns what is safe to emit and whether a stop sequence matched.
    pub(crate) fn push(&mut self, text: &str) -> StopOutcome {
        if self.stops.is_empty() {
            return StopOutcome {
                emit: text.to_owned(),
                stopped: false,
            };
        }
        self.held.push_str(text);
        let first_match = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_match {
            let emit = self.held[..at].to_owned();
            self.held.clear();
            return StopOutcome {
                emit,
                stopped: true,
            };
        }
        let keep = self.partial_match_len();
        let cut = self.held.len() - keep;
        let emit = self.held[..cut].to_owned();
        self.held.drain(..cut);
        StopOutcome {
            emit,
            stopped: false,
        }
    }

    /// The generation ended without a match: what was held back is ordinary text.
    pub(crate) fn flush(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// Length of the longest suffix of the held text that begins some stop sequence.
    fn partial_match_len(&self) -> usize {
        let held = &self.held;
        self.stops
            .iter()
            .map(|stop| {
                (1..stop.len().min(held.len() + 1))
                    .rev()
                    .filter(|&n| stop.is_char_boundary(n) && held.is_char_boundary(held.len() - n))
                    .find(|&n| held.ends_with(&stop[..n]))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for p in pieces {
            let o = m.push(p);
            out.push_str(&o.emit);
            if o.stopped {
                return (out, true);
            }
        }
        out.push_str(&m.flush());
        (out, false)
    }

    #[test]
    fn stop_split_across_pieces_never_leaks() {
        assert_eq!(
            run(&["END"], &["hello E", "N", "D more"]),
            ("hello ".into(), true)
        );
        let mut m = StopMatcher::new(vec!["END".into()]);
        assert_eq!(m.push("ab E").emit, "ab ");
        assert_eq!(m.push("N").emit, "");
    }

    #[test]
    fn false_alarm_is_released() {
        assert_eq!(run(&["END"], &["E", "N", "x"]), ("ENx".into(), false));
        assert_eq!(run(&["END"], &["abc E"]), ("abc E".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(run(&["b", "a"], &["xxab"]), ("xx".into(), true));
        assert_eq!(run(&["é!"], &["caf", "é", "!"]), ("caf".into(), true));
    }
}
