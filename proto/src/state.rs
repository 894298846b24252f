//! The state file's contents (`<state dir>/credd/state.json`): which profile the current route
//! serves, and that profile's region. The daemon writes it whenever either changes (a switch, a
//! config edit, its start); `credd prompt` and the region hook of `credd env --hook` read it
//! without a round trip to the daemon. No secrets, ever.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub current_profile: Option<String>,
    /// The current profile's `region`, as the daemon's config in force has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_region: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_without_a_region_still_reads() {
        let old: State = serde_json::from_str(r#"{"current_profile": "staging"}"#).unwrap();
        assert_eq!(old.current_profile.as_deref(), Some("staging"));
        assert_eq!(old.current_region, None);
        let json = serde_json::to_string(&State::default()).unwrap();
        assert_eq!(json, r#"{"current_profile":null}"#);
    }
}
