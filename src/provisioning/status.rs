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

    /// The status named `name`; `None` for a name that is not one.
    pub fn parse(name: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|s| s.as_str() == name)
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

    /// The statuses a request may move to `next` from.
    pub fn sources(next: RequestStatus) -> Vec<RequestStatus> {
        RequestStatus::ALL
            .into_iter()
            .filter(|s| s.can_become(next))
            .collect()
    }

    /// `('a', 'b')`: the statuses a request may move to `next` from, as an SQL list.
    pub fn sql_sources(next: RequestStatus) -> String {
        let names: Vec<String> = RequestStatus::sources(next)
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
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

impl std::fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    #[test]
    fn each_status_reads_back_from_its_name() {
        for status in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(RequestStatus::parse("sent"), None);
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
