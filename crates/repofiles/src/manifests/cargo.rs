//! `Cargo.toml`, through the cargo_toml crate. Workspace-inherited requirements are recorded as
//! `workspace` (the root manifest holds the version).

use cargo_toml::{Dependency as CargoDep, DepsSet};

use super::{Dependency, Ecosystem, Manifest, Package, Scope};

pub(super) fn parse(path: &str, text: &str) -> Result<Manifest, String> {
    let m = cargo_toml::Manifest::from_str(text).map_err(|e| format!("invalid Cargo.toml: {e}"))?;
    let mut out = Manifest::default();
    if let Some(p) = &m.package {
        out.produces.push(Package {
            ecosystem: Ecosystem::Cargo,
            name: p.name.clone(),
        });
    }
    let mut add = |deps: &DepsSet, scope: Scope| {
        for (key, dep) in deps {
            out.dependencies.push(Dependency {
                ecosystem: Ecosystem::Cargo,
                package: dep.package().unwrap_or(key).to_string(),
                requirement: requirement(dep),
                scope,
                file: path.to_string(),
            });
        }
    };
    add(&m.dependencies, Scope::Runtime);
    add(&m.dev_dependencies, Scope::Dev);
    add(&m.build_dependencies, Scope::Build);
    for target in m.target.values() {
        add(&target.dependencies, Scope::Runtime);
        add(&target.dev_dependencies, Scope::Dev);
        add(&target.build_dependencies, Scope::Build);
    }
    if let Some(ws) = &m.workspace {
        // A workspace root's shared versions are what members inherit; record them as runtime.
        add(&ws.dependencies, Scope::Runtime);
    }
    Ok(out)
}

fn requirement(dep: &CargoDep) -> String {
    match dep {
        CargoDep::Simple(req) => req.to_string(),
        CargoDep::Inherited(_) => "workspace".to_string(),
        CargoDep::Detailed(d) => match (&d.version, &d.git, &d.path) {
            (Some(v), _, _) => v.to_string(),
            (None, Some(git), _) => format!("git+{git}"),
            (None, None, Some(path)) => format!("path:{path}"),
            (None, None, None) => "*".to_string(),
        },
    }
}
