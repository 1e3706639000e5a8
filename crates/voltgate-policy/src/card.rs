//! Card namespaces: what a tenant may claim, and which stored card a charger's presented
//! text is.
//!
//! A card (an OCPP id token) is claimed in its principal's **tenant**: the scope directly under
//! the root that holds the principal's home scope. Principals homed on the root itself form a
//! namespace of their own. Within one namespace a card's text is unique per type — two cards of
//! one text clash when either has no type (it matches every presented type) or both have the
//! same one — and a principal holds a text once. Across namespaces nothing clashes, so no
//! tenant can squat a card text another tenant will need, nor learn that another tenant has it.
//!
//! At a station the presented text is looked up in the station's tenant, then among root-level
//! principals' cards, never in another tenant's: a card of another tenant is, to that station,
//! unknown. The store knows nothing of this; the gateway hands every stored card of the text to
//! [`Engine::card_at_station`] and [`Engine::check_claim_card`].

use crate::engine::Engine;
use crate::error::PolicyError;

/// A stored card as the namespace rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardClaim<'a> {
    /// The principal the card charges as.
    pub principal: &'a str,
    /// The OCPP 2.0.1 `IdTokenEnumType` the card is stored with; `None` matches any.
    pub token_type: Option<&'a str>,
    /// Whether the card is stored in exactly the presented text, not only in its normal form
    /// (a row kept as it was by an older migration is found by its exact text first).
    pub exact: bool,
}

impl Engine {
    /// The tenant of a scope: its ancestor (or itself) directly under the root; `None` for
    /// the root and for an unknown scope.
    pub fn tenant_of_scope(&self, scope: &str) -> Option<&str> {
        let index = self.scopes.lookup(scope)?;
        self.scopes.top(index).map(|top| self.scopes.name(top))
    }

    /// The namespace a principal's cards are claimed in: its home scope's tenant, `None` for a
    /// principal homed on the root (and for an unknown one, which holds no cards).
    pub fn card_namespace(&self, principal: &str) -> Option<&str> {
        let record = self.record(principal)?;
        self.scopes
            .top(record.home)
            .map(|top| self.scopes.name(top))
    }

    /// Whether `principal` may claim a card of `token_type` whose text the cards `existing`
    /// already carry (every stored card of that text, in any namespace). Refused when one of
    /// them is in the same namespace and either has no type, both have the same, or it is the
    /// principal's own; the refusal names the text only, never the holder.
    pub fn check_claim_card(
        &self,
        principal: &str,
        text: &str,
        token_type: Option<&str>,
        existing: &[CardClaim<'_>],
    ) -> Result<(), PolicyError> {
        let record = self
            .record(principal)
            .ok_or_else(|| PolicyError::UnknownPrincipal(principal.to_owned()))?;
        let namespace = self.scopes.top(record.home);
        let clash = existing.iter().any(|card| {
            card.principal == principal
                || (self
                    .record(card.principal)
                    .is_some_and(|holder| self.scopes.top(holder.home) == namespace)
                    && types_overlap(card.token_type, token_type))
        });
        if clash {
            return Err(PolicyError::CardTaken(text.to_owned()));
        }
        Ok(())
    }

    /// Which of `cards` (every stored card whose text is the presented one, exact or in normal
    /// form) a charger at `station` presenting `presented_type` (`None` on OCPP 1.6) means:
    /// only cards of the station's tenant, else of root-level principals, whose type matches;
    /// within that namespace an exactly stored text before a normalised one. `None` when there
    /// is none, or when two remain that the presentation cannot tell apart (a 1.6 idTag for
    /// two cards of different types): an ambiguous card is an unknown one.
    pub fn card_at_station(
        &self,
        station: &str,
        presented_type: Option<&str>,
        cards: &[CardClaim<'_>],
    ) -> Option<usize> {
        let tenant = self
            .scopes
            .lookup(station)
            .and_then(|index| self.scopes.top(index));
        let rank = |card: &CardClaim<'_>| -> Option<(u8, u8)> {
            let holder = self.record(card.principal)?;
            let namespace = match self.scopes.top(holder.home) {
                None => 1,
                home if home == tenant => 0,
                Some(_) => return None,
            };
            let matches = match (card.token_type, presented_type) {
                (Some(stored), Some(presented)) => stored == presented,
                _ => true,
            };
            matches.then_some((namespace, u8::from(!card.exact)))
        };
        let mut best: Option<((u8, u8), usize)> = None;
        let mut tied = false;
        for (n, card) in cards.iter().enumerate() {
            let Some(key) = rank(card) else { continue };
            match best {
                Some((seen, _)) if seen < key => {}
                Some((seen, _)) if seen == key => tied = true,
                _ => {
                    best = Some((key, n));
                    tied = false;
                }
            }
        }
        best.filter(|_| !tied).map(|(_, n)| n)
    }
}

/// Two cards of one text clash in a namespace unless both are typed, differently.
fn types_overlap(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, PrincipalKind};

    fn engine() -> Engine {
        let mut engine = Engine::new(Preset::builtin("connect").unwrap());
        for (id, parent) in [("a", "root"), ("a1", "a"), ("b", "root")] {
            engine.add_scope(id, "site", parent).unwrap();
        }
        engine.add_scope("cp-a", "station", "a1").unwrap();
        engine.add_scope("cp-b", "station", "b").unwrap();
        for (id, home) in [("ann", "a1"), ("amy", "a"), ("bob", "b"), ("rex", "root")] {
            engine
                .add_principal(id, PrincipalKind::Driver, home)
                .unwrap();
        }
        engine
    }

    fn card(principal: &'static str, token_type: Option<&'static str>) -> CardClaim<'static> {
        CardClaim {
            principal,
            token_type,
            exact: true,
        }
    }

    #[test]
    fn tenants_are_the_scopes_under_the_root() {
        let engine = engine();
        assert_eq!(engine.tenant_of_scope("cp-a"), Some("a"));
        assert_eq!(engine.tenant_of_scope("a"), Some("a"));
        assert_eq!(engine.tenant_of_scope("root"), None);
        assert_eq!(engine.card_namespace("ann"), Some("a"));
        assert_eq!(engine.card_namespace("rex"), None);
        assert_eq!(engine.card_namespace("nobody"), None);
    }

    #[test]
    fn a_text_is_claimed_once_per_type_within_a_tenant_only() {
        let engine = engine();
        let claim = |who, ty, existing: &[CardClaim<'_>]| {
            engine.check_claim_card(who, "X", ty, existing).is_ok()
        };
        assert!(claim("bob", None, &[card("ann", None)]), "another tenant");
        assert!(
            claim("rex", None, &[card("ann", None)]),
            "the root namespace"
        );
        assert!(
            !claim("amy", None, &[card("ann", Some("eMAID"))]),
            "untyped"
        );
        assert!(!claim("amy", Some("eMAID"), &[card("ann", None)]));
        assert!(!claim("amy", Some("eMAID"), &[card("ann", Some("eMAID"))]));
        assert!(claim(
            "amy",
            Some("ISO14443"),
            &[card("ann", Some("eMAID"))]
        ));
        assert!(
            !claim("ann", Some("ISO14443"), &[card("ann", Some("eMAID"))]),
            "own text"
        );
        let taken = engine
            .check_claim_card("amy", "X", None, &[card("ann", None)])
            .unwrap_err();
        assert!(!taken.to_string().contains("ann"), "{taken}");
    }

    #[test]
    fn a_station_finds_its_tenants_card_then_a_root_level_one_never_another_tenants() {
        let engine = engine();
        let cards = [card("bob", None), card("rex", None), card("ann", None)];
        assert_eq!(engine.card_at_station("cp-a", None, &cards), Some(2));
        assert_eq!(engine.card_at_station("cp-b", None, &cards), Some(0));
        assert_eq!(engine.card_at_station("cp-a", None, &cards[..2]), Some(1));
        assert_eq!(engine.card_at_station("cp-a", None, &cards[..1]), None);
        let typed = [card("ann", Some("eMAID")), card("rex", Some("ISO14443"))];
        assert_eq!(
            engine.card_at_station("cp-a", Some("ISO14443"), &typed),
            Some(1)
        );
        let two = [card("ann", Some("eMAID")), card("amy", Some("ISO14443"))];
        assert_eq!(
            engine.card_at_station("cp-a", None, &two),
            None,
            "ambiguous"
        );
        assert_eq!(engine.card_at_station("cp-a", Some("eMAID"), &two), Some(0));
        let legacy = [
            CardClaim {
                exact: false,
                ..card("ann", None)
            },
            card("amy", None),
        ];
        assert_eq!(engine.card_at_station("cp-a", None, &legacy), Some(1));
    }
}
