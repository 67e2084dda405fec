//! `go.mod`: the `module` path is the package produced; `require` lines (single or in blocks)
//! are runtime dependencies, `tool` lines (Go 1.24) build dependencies. `replace`, `exclude`
//! and `retract` change resolution, not what is required, and are skipped.

use super::{Dependency, Ecosystem, Manifest, Package, Scope};

pub(super) fn parse(path: &str, text: &str) -> Result<Manifest, String> {
    let mut out = Manifest::default();
    let mut block: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(directive) = &block {
            if line == ")" {
                block = None;
                continue;
            }
            handle(directive, line, path, i + 1, &mut out)?;
            continue;
        }
        let (directive, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if rest == "(" {
            block = Some(directive.to_string());
            continue;
        }
        handle(directive, rest, path, i + 1, &mut out)?;
    }
    if block.is_some() {
        return Err("unterminated ( block".into());
    }
    if out.produces.is_empty() {
        return Err("no `module` directive".into());
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '`')
}

fn handle(
    directive: &str,
    args: &str,
    path: &str,
    line: usize,
    out: &mut Manifest,
) -> Result<(), String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    match directive {
        "module" => {
            let module = words.first().map(|m| unquote(m)).unwrap_or_default();
            if module.is_empty() {
                return Err(format!("line {line}: `module` without a path"));
            }
            out.produces.push(Package {
                ecosystem: Ecosystem::Go,
                name: module.to_string(),
            });
        }
        "require" => {
            let [module, version, ..] = words.as_slice() else {
                return Err(format!(
                    "line {line}: `require` needs a module path and a version"
                ));
            };
            out.dependencies.push(Dependency {
                ecosystem: Ecosystem::Go,
                package: unquote(module).to_string(),
                requirement: unquote(version).to_string(),
                scope: Scope::Runtime,
                file: path.to_string(),
            });
        }
        "tool" => {
            if let Some(tool) = words.first() {
                out.dependencies.push(Dependency {
                    ecosystem: Ecosystem::Go,
                    package: unquote(tool).to_string(),
                    requirement: String::new(),
                    scope: Scope::Build,
                    file: path.to_string(),
                });
            }
        }
        _ => {}
    }
    Ok(())
}
