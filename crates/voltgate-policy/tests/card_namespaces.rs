//! Card namespaces against a naive model, on random trees: a claim is refused exactly when a
//! card of the same text sits in the claimant's tenant with an overlapping type (or is its own),
//! and a station resolves a presented text to the card the model picks — its tenant's, else a
//! root-level one, never another tenant's, nothing when the presentation is ambiguous.

use std::collections::HashMap;

use proptest::prelude::*;
use voltgate_policy::{CardClaim, Engine, Preset, PrincipalKind, ROOT_SCOPE_ID};

const TYPES: [Option<&str>; 3] = [None, Some("eMAID"), Some("ISO14443")];

#[derive(Debug, Clone)]
struct Plan {
    /// Each site's parent: the root (`None`) or an earlier site.
    sites: Vec<Option<usize>>,
    /// Each principal's home: the root (`None`) or a site.
    homes: Vec<Option<usize>>,
    /// Claims: (principal, text, type), tried in order.
    claims: Vec<(usize, u8, usize)>,
}

fn plan() -> impl Strategy<Value = Plan> {
    (1usize..6)
        .prop_flat_map(|sites| {
            let parents: Vec<BoxedStrategy<Option<usize>>> = (0..sites)
                .map(|n| {
                    if n == 0 {
                        Just(None).boxed()
                    } else {
                        proptest::option::of(0..n).boxed()
                    }
                })
                .collect();
            (
                parents,
                proptest::collection::vec(proptest::option::weighted(0.8, 0..sites), 1..7),
            )
        })
        .prop_flat_map(|(sites, homes)| {
            let principals = homes.len();
            (
                Just(sites),
                Just(homes),
                proptest::collection::vec((0..principals, 0u8..3, 0..TYPES.len()), 0..14),
            )
        })
        .prop_map(|(sites, homes, claims)| Plan {
            sites,
            homes,
            claims,
        })
}

fn site(n: usize) -> String {
    format!("s{n}")
}

fn check(plan: &Plan) -> Result<(), TestCaseError> {
    let mut engine = Engine::new(Preset::builtin("connect").unwrap());
    let parent_of = |n: usize| plan.sites[n].map_or(ROOT_SCOPE_ID.to_owned(), site);
    for n in 0..plan.sites.len() {
        engine.add_scope(&site(n), "site", &parent_of(n)).unwrap();
        engine
            .add_scope(&format!("cp{n}"), "station", &site(n))
            .unwrap();
    }
    // The naive tenant: walk up to the site whose parent is the root.
    let tenant_of_site = |mut n: usize| {
        while let Some(parent) = plan.sites[n] {
            n = parent;
        }
        n
    };
    let namespace = |principal: usize| plan.homes[principal].map(tenant_of_site);
    let names: Vec<String> = (0..plan.homes.len()).map(|p| format!("p{p}")).collect();
    for (p, home) in plan.homes.iter().enumerate() {
        let home = home.map_or(ROOT_SCOPE_ID.to_owned(), site);
        engine
            .add_principal(&names[p], PrincipalKind::Driver, &home)
            .unwrap();
    }

    // (principal, text, type index) of every accepted claim.
    let mut stored: Vec<(usize, u8, usize)> = Vec::new();
    for &(p, text, ty) in &plan.claims {
        let same_text: Vec<&(usize, u8, usize)> =
            stored.iter().filter(|(_, t, _)| *t == text).collect();
        let clash = same_text.iter().any(|&&(q, _, other)| {
            q == p
                || (namespace(q) == namespace(p)
                    && match (TYPES[other], TYPES[ty]) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    })
        });
        let claims: Vec<CardClaim<'_>> = same_text
            .iter()
            .map(|&&(q, _, other)| CardClaim {
                principal: &names[q],
                token_type: TYPES[other],
                exact: true,
            })
            .collect();
        let answer = engine.check_claim_card(&names[p], &format!("T{text}"), TYPES[ty], &claims);
        prop_assert_eq!(
            answer.is_err(),
            clash,
            "p{} claims T{} {:?}",
            p,
            text,
            TYPES[ty]
        );
        if !clash {
            stored.push((p, text, ty));
        }
    }

    let mut by_text: HashMap<u8, Vec<(usize, usize)>> = HashMap::new();
    for &(p, text, ty) in &stored {
        by_text.entry(text).or_default().push((p, ty));
    }
    for station in 0..plan.sites.len() {
        let tenant = tenant_of_site(station);
        for cards in by_text.values() {
            let claims: Vec<CardClaim<'_>> = cards
                .iter()
                .map(|&(p, ty)| CardClaim {
                    principal: &names[p],
                    token_type: TYPES[ty],
                    exact: true,
                })
                .collect();
            for presented in TYPES {
                let matches = |ty: usize| match (TYPES[ty], presented) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                let in_namespace = |ns: Option<usize>| -> Vec<usize> {
                    (0..cards.len())
                        .filter(|&n| namespace(cards[n].0) == ns && matches(cards[n].1))
                        .collect()
                };
                let tenant_cards = in_namespace(Some(tenant));
                let chosen = if tenant_cards.is_empty() {
                    in_namespace(None)
                } else {
                    tenant_cards
                };
                let expected = match chosen.as_slice() {
                    [one] => Some(*one),
                    _ => None,
                };
                let found = engine.card_at_station(&format!("cp{station}"), presented, &claims);
                prop_assert_eq!(found, expected, "cp{} {:?} {:?}", station, presented, cards);
                if let Some(n) = found {
                    let ns = namespace(cards[n].0);
                    prop_assert!(ns.is_none() || ns == Some(tenant), "another tenant's card");
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn claims_and_station_lookups_follow_the_naive_model(plan in plan()) {
        check(&plan)?;
    }
}
