//! The states of an access request, and the one table of the moves between them. The
//! database (`access_request.status`), the officials' CLI and the mail templates name them
//! through [`RequestStatus`]; the store's updates are guarded by [`RequestStatus::can_become`].

/// Where an access request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Stored, not yet judged.
    Received,
    /// Judged: an official must decide (proof missing, revocation unknown, …).
    AwaitingOfficial,
    /// Approved (automatically or by an official): the reply is on its way.
    Approved,
    /// Rejected: the reply is on its way.
    Rejected,
    /// The reply was sent.
    Replied,
    /// The reply was delivered (its proof of delivery came back).
    Delivered,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 6] = [
        RequestStatus::Received,
        RequestStatus::AwaitingOfficial,
        RequestStatus::Approved,
        RequestStatus::Rejected,
        RequestStatus::Replied,
        RequestStatus::Delivered,
    ];

    /// The name in `access_request.status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Received => "received",
            RequestStatus::AwaitingOfficial => "awaiting_official",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Replied => "replied",
            RequestStatus::Delivered => "delivered",
        }
    }

    /// The one table of moves: a request is judged (decided at once, or left to an
    /// official), an official decides, the reply is sent, its delivery is proven.
    pub const fn can_become(self, next: RequestStatus) -> bool {
        use RequestStatus::*;
        matches!(
            (self, next),
            (Received, AwaitingOfficial | Approved | Rejected)
                | (AwaitingOfficial, Approved | Rejected)
                | (Approved | Rejected, Replied)
                | (Replied, Delivered)
        )
    }

    /// Whether the request still waits for its reply to be sent (its deadline runs).
    pub const fn awaits_reply(self) -> bool {
        !matches!(self, RequestStatus::Replied | RequestStatus::Delivered)
    }

    /// As officials read it.
    pub const fn polish(self) -> &'static str {
        match self {
            RequestStatus::Received => "przyjęty",
            RequestStatus::AwaitingOfficial => "czeka na decyzję urzędnika",
            RequestStatus::Approved => "zatwierdzony, odpowiedź w drodze",
            RequestStatus::Rejected => "odrzucony, odpowiedź w drodze",
            RequestStatus::Replied => "odpowiedź wysłana",
            RequestStatus::Delivered => "odpowiedź doręczona",
        }
    }
}

crate::named_states!(RequestStatus, moves);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::states::Moves;
    use RequestStatus::*;

    #[test]
    fn each_status_reads_back_from_its_name() {
        crate::states::assert_names_read_back::<RequestStatus>("sent");
    }

    #[test]
    fn the_moves_are_forward_only_and_a_decision_is_taken_once() {
        assert_eq!(RequestStatus::sources(Replied), [Approved, Rejected]);
        assert_eq!(
            RequestStatus::sql_sources(Replied),
            "('approved', 'rejected')"
        );
        assert_eq!(RequestStatus::sources(Delivered), [Replied]);
        assert_eq!(
            RequestStatus::sources(Approved),
            [Received, AwaitingOfficial]
        );
        assert!(!Approved.can_become(Rejected), "a decision stands");
        assert!(!Replied.can_become(Approved));
        assert!(!Delivered.can_become(Replied));
        for status in RequestStatus::ALL {
            assert!(!status.can_become(status), "{status} to itself");
            assert!(
                !status.can_become(Received),
                "nothing goes back to received"
            );
        }
        let open: Vec<_> = RequestStatus::ALL
            .into_iter()
            .filter(|s| s.awaits_reply())
            .collect();
        assert_eq!(open, [Received, AwaitingOfficial, Approved, Rejected]);
    }
}
