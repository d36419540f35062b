//! Where a letter of the office stands on its way out, and the one table of the moves
//! between those states. The database (`outbound_document.status`, whose CHECK lists exactly
//! these names), the officials' CLI and the reply step name them through [`LetterStatus`];
//! the store's updates are guarded by [`LetterStatus::can_become`].
//!
//! This is the sending, as eurzad does it. What the law makes of a sent letter (delivered,
//! deemed delivered, awaiting pickup…) comes from the channel's evidence and is kept apart.

/// Where a letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LetterStatus {
    /// Made and sealed, recorded before the channel is called: waiting to be sent.
    Pending,
    /// The intent to call the channel is committed; the call is under way (or its answer was
    /// lost with the worker that made it).
    Sending,
    /// The sending was interrupted and its outcome is unknown: the letter may have arrived.
    /// It is never sent again blindly; an official resends it or records it as sent.
    ReviewRequired,
    /// The channel accepted it (with its proof of submission, where the channel gives one).
    Sent,
    /// The proof of delivery came back.
    Delivered,
}

impl LetterStatus {
    pub const ALL: [LetterStatus; 5] = [
        LetterStatus::Pending,
        LetterStatus::Sending,
        LetterStatus::ReviewRequired,
        LetterStatus::Sent,
        LetterStatus::Delivered,
    ];

    /// The name in `outbound_document.status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LetterStatus::Pending => "pending",
            LetterStatus::Sending => "sending",
            LetterStatus::ReviewRequired => "review_required",
            LetterStatus::Sent => "sent",
            LetterStatus::Delivered => "delivered",
        }
    }

    /// The one table of moves:
    /// - a pending letter is taken to be sent;
    /// - a call of the channel ends in sent, in refused (nothing went out: pending again, for
    ///   the next try), or, when its outcome is lost, in review;
    /// - an official resends a letter under review (pending) or records it as sent;
    /// - a proof of delivery makes a letter delivered from any state in which it may have gone
    ///   out, even one whose answer was lost (the proof settles it), and a second proof
    ///   changes nothing.
    pub const fn can_become(self, next: LetterStatus) -> bool {
        use LetterStatus::*;
        matches!(
            (self, next),
            (Pending, Sending)
                | (Sending, Sent | Pending | ReviewRequired)
                | (ReviewRequired, Pending | Sent)
                | (Sending | ReviewRequired | Sent | Delivered, Delivered)
        )
    }

    /// Whether the letter went out as far as eurzad knows (the request counts as answered).
    pub const fn went_out(self) -> bool {
        matches!(self, LetterStatus::Sent | LetterStatus::Delivered)
    }

    /// As officials read it.
    pub const fn polish(self) -> &'static str {
        match self {
            LetterStatus::Pending => "czeka na wysłanie",
            LetterStatus::Sending => "w trakcie wysyłania",
            LetterStatus::ReviewRequired => "wysyłka przerwana, czeka na decyzję urzędnika",
            LetterStatus::Sent => "wysłane",
            LetterStatus::Delivered => "doręczone",
        }
    }
}

crate::named_states!(LetterStatus, moves);

#[cfg(test)]
mod tests {
    use super::*;
    use LetterStatus::*;

    use crate::states::Moves;

    #[test]
    fn each_status_reads_back_from_its_name() {
        crate::states::assert_names_read_back::<LetterStatus>("failed");
    }

    #[test]
    fn a_letter_whose_outcome_is_lost_is_never_sent_again_without_an_official() {
        // Sending is only ever begun from pending; a letter under review gets there only by an
        // official's resend.
        assert_eq!(LetterStatus::sources(Sending), vec![Pending]);
        assert!(Sending.can_become(ReviewRequired));
        assert!(!ReviewRequired.can_become(Sending));
        assert_eq!(
            LetterStatus::sources(Pending),
            vec![Sending, ReviewRequired]
        );
        // Nothing leaves delivered, and nothing that went out goes back to be sent.
        for next in LetterStatus::ALL {
            assert_eq!(Delivered.can_become(next), next == Delivered, "{next}");
            assert!(!Sent.can_become(next) || next == Delivered, "{next}");
        }
        assert_eq!(
            LetterStatus::sql_sources(Delivered),
            "('sending', 'review_required', 'sent', 'delivered')"
        );
    }

    /// The CHECK of `outbound_document.status` in the newest migrations lists exactly these
    /// names, on both databases.
    #[test]
    fn the_database_accepts_exactly_these_states() {
        let names: Vec<String> = LetterStatus::ALL
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let check = format!("CHECK (status IN ({}))", names.join(", "));
        for backend in ["sqlite", "postgres"] {
            let sql = std::fs::read_to_string(format!(
                "{}/migrations/{backend}/0019_letter_status_review_required.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            assert!(sql.contains(&check), "{backend}: {check}");
        }
    }
}
