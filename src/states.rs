//! What the kinds and states stored by name share (job kinds, access-request and letter
//! states): [`Named`], a value's name in the database and the value of a name, and
//! [`Moves`], the one table of allowed moves between states and the same table as SQL.

/// A kind or state that the database stores by its name.
pub trait Named: Copy + Eq + std::fmt::Debug + 'static {
    /// Every value, in the order listings show them.
    const ALL: &'static [Self];

    /// The name stored in the database (and serde's).
    fn name(self) -> &'static str;

    /// The value named `name`; `None` for a name this version does not know.
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
}

/// States with one table of the moves between them.
pub trait Moves: Named {
    /// Whether a move from `self` to `next` is allowed.
    fn can_become(self, next: Self) -> bool;

    /// The states that may move to `next`.
    fn sources(next: Self) -> Vec<Self> {
        Self::ALL
            .iter()
            .copied()
            .filter(|s| s.can_become(next))
            .collect()
    }

    /// `('a', 'b')`: the states that may move to `next`, as an SQL list for the guard of an
    /// `UPDATE`.
    fn sql_sources(next: Self) -> String {
        let names: Vec<String> = Self::sources(next)
            .iter()
            .map(|s| format!("'{}'", s.name()))
            .collect();
        format!("({})", names.join(", "))
    }
}

/// Implements [`Named`] (and with `moves`, [`Moves`]) and `Display` for an enum from its
/// inherent `ALL`, `as_str` (and `can_become`), which stay `const` for the SQL built from them.
#[macro_export]
macro_rules! named_states {
    ($type:ty) => {
        impl $crate::states::Named for $type {
            const ALL: &'static [$type] = &<$type>::ALL;

            fn name(self) -> &'static str {
                self.as_str()
            }
        }

        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
    ($type:ty, moves) => {
        $crate::named_states!($type);

        impl $crate::states::Moves for $type {
            fn can_become(self, next: $type) -> bool {
                <$type>::can_become(self, next)
            }
        }
    };
}

/// Each value reads back from its name, serde writes the same name, and `unknown` is no
/// value's name.
#[cfg(test)]
pub(crate) fn assert_names_read_back<T: Named + serde::Serialize>(unknown: &str) {
    for &value in T::ALL {
        assert_eq!(T::parse(value.name()), Some(value));
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            format!("\"{}\"", value.name())
        );
    }
    assert_eq!(T::parse(unknown), None);
}
