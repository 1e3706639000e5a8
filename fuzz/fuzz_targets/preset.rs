//! Reads arbitrary text as a preset file. Loading must never panic; a preset that loads must
//! build an engine, print its permission matrix and answer checks without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use voltgate_policy::{Action, Engine, Preset, PrincipalKind, Resource};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(preset) = Preset::parse("fuzz.toml", text) else {
        return;
    };
    let _ = preset.matrix();
    let kinds: Vec<String> = preset.kinds().map(|k| k.id.clone()).collect();
    let roles: Vec<String> = preset.roles().map(|r| r.id.clone()).collect();
    let mut engine = Engine::new(preset);
    let mut scopes = vec!["root".to_owned()];
    for (n, kind) in kinds.iter().enumerate() {
        let id = format!("s{n}");
        for parent in scopes.clone() {
            if engine.add_scope(&id, kind, &parent).is_ok() {
                scopes.push(id);
                break;
            }
        }
    }
    if engine
        .add_principal("p", PrincipalKind::Operator, "root")
        .is_err()
    {
        return;
    }
    for role in &roles {
        for scope in &scopes {
            let _ = engine.assign("p", role, scope);
        }
    }
    for scope in &scopes {
        let resource = Resource::Scope(scope.clone());
        for action in Action::ALL {
            let _ = engine.check("p", *action, &resource);
        }
        let _ = engine.effective_permissions("p", scope);
        let _ = engine.can_see("p", &resource);
    }
});
