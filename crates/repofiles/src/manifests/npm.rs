//! `package.json`: `name` is the package produced (unless `private`), the dependency maps give
//! runtime (`dependencies`, `peerDependencies`, `optionalDependencies`) and dev dependencies.

use serde_json::{Map, Value};

use super::{Dependency, Ecosystem, Manifest, Package, Scope};

pub(super) fn parse(path: &str, text: &str) -> Result<Manifest, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(root) = v else {
        return Err("package.json must be an object".into());
    };
    let mut out = Manifest::default();
    let private = root
        .get("private")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if let Some(name) = root.get("name").and_then(Value::as_str)
        && !private
        && !name.is_empty()
    {
        out.produces.push(Package {
            ecosystem: Ecosystem::Npm,
            name: name.to_string(),
        });
    }
    for (key, scope) in [
        ("dependencies", Scope::Runtime),
        ("peerDependencies", Scope::Runtime),
        ("optionalDependencies", Scope::Runtime),
        ("devDependencies", Scope::Dev),
    ] {
        match root.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(deps)) => add(&mut out, deps, scope, path),
            Some(_) => return Err(format!("`{key}` must be an object")),
        }
    }
    Ok(out)
}

fn add(out: &mut Manifest, deps: &Map<String, Value>, scope: Scope, path: &str) {
    for (name, req) in deps {
        out.dependencies.push(Dependency {
            ecosystem: Ecosystem::Npm,
            package: name.clone(),
            requirement: req.as_str().unwrap_or_default().to_string(),
            scope,
            file: path.to_string(),
        });
    }
}
