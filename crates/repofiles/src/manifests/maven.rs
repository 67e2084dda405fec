//! `pom.xml`: the project's coordinates are the package produced; `<dependencies>` (not
//! `<dependencyManagement>`) are dependencies, with `${property}` versions resolved from the
//! file's own `<properties>` and project coordinates. Parent POMs are not fetched.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{Dependency, Ecosystem, Manifest, Package, Scope};

#[derive(Default)]
struct RawDep {
    group: String,
    artifact: String,
    version: String,
    scope: String,
}

pub(super) fn parse(path: &str, text: &str) -> Result<Manifest, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut props: HashMap<String, String> = HashMap::new();
    let mut deps: Vec<RawDep> = Vec::new();
    let mut current: Option<RawDep> = None;
    let mut text_buf = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("invalid XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                stack.push(name);
                text_buf.clear();
                if path_is(&stack, &["project", "dependencies", "dependency"]) {
                    current = Some(RawDep::default());
                }
            }
            Event::Text(t) => text_buf.push_str(&t.xml10_content()),
            Event::CData(t) => text_buf.push_str(t.as_ref()),
            Event::GeneralRef(r) => text_buf.push_str(match r.as_ref() {
                "amp" => "&",
                "lt" => "<",
                "gt" => ">",
                "quot" => "\"",
                "apos" => "'",
                _ => "",
            }),
            Event::End(_) => {
                let value = text_buf.trim().to_string();
                text_buf.clear();
                let depth = stack.len();
                if depth == 3 && stack[0] == "project" && stack[1] == "properties" {
                    props.insert(stack[2].clone(), value.clone());
                }
                if depth == 2 && stack[0] == "project" {
                    match stack[1].as_str() {
                        "groupId" => props.insert("project.groupId".into(), value.clone()),
                        "artifactId" => props.insert("project.artifactId".into(), value.clone()),
                        "version" => props.insert("project.version".into(), value.clone()),
                        _ => None,
                    };
                }
                if depth == 3 && stack[0] == "project" && stack[1] == "parent" {
                    match stack[2].as_str() {
                        "groupId" => props.insert("project.parent.groupId".into(), value.clone()),
                        "version" => props.insert("project.parent.version".into(), value.clone()),
                        _ => None,
                    };
                }
                if depth == 4
                    && path_is(&stack[..3], &["project", "dependencies", "dependency"])
                    && let Some(d) = current.as_mut()
                {
                    match stack[3].as_str() {
                        "groupId" => d.group = value,
                        "artifactId" => d.artifact = value,
                        "version" => d.version = value,
                        "scope" => d.scope = value,
                        _ => {}
                    }
                } else if depth == 3
                    && path_is(&stack, &["project", "dependencies", "dependency"])
                    && let Some(d) = current.take()
                {
                    deps.push(d);
                }
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(format!("unclosed element <{}>", stack.join("><")));
    }
    let group = props
        .get("project.groupId")
        .or_else(|| props.get("project.parent.groupId"))
        .cloned();
    if !props.contains_key("project.version")
        && let Some(v) = props.get("project.parent.version").cloned()
    {
        props.insert("project.version".into(), v);
    }
    if let Some(g) = &group {
        props.insert("project.groupId".into(), g.clone());
    }
    let mut out = Manifest::default();
    if let (Some(g), Some(a)) = (&group, props.get("project.artifactId")) {
        out.produces.push(Package {
            ecosystem: Ecosystem::Maven,
            name: format!("{g}:{a}"),
        });
    }
    for d in deps {
        if d.group.is_empty() || d.artifact.is_empty() {
            return Err("a <dependency> without <groupId> or <artifactId>".into());
        }
        out.dependencies.push(Dependency {
            ecosystem: Ecosystem::Maven,
            package: format!(
                "{}:{}",
                resolve(&d.group, &props),
                resolve(&d.artifact, &props)
            ),
            requirement: resolve(&d.version, &props),
            scope: match d.scope.as_str() {
                "test" => Scope::Dev,
                "provided" | "system" => Scope::Build,
                _ => Scope::Runtime,
            },
            file: path.to_string(),
        });
    }
    Ok(out)
}

fn path_is(stack: &[String], want: &[&str]) -> bool {
    stack.len() == want.len() && stack.iter().zip(want).all(|(a, b)| a == b)
}

/// Replaces `${name}` with properties of this file; unknown references stay as written.
fn resolve(value: &str, props: &HashMap<String, String>) -> String {
    let mut out = value.to_string();
    // Properties may refer to properties; a few rounds settle any sane file without looping.
    for _ in 0..5 {
        let Some(start) = out.find("${") else { break };
        let Some(len) = out[start..].find('}') else {
            break;
        };
        let key = &out[start + 2..start + len];
        let Some(v) = props.get(key) else { break };
        out = format!("{}{}{}", &out[..start], v, &out[start + len + 1..]);
    }
    out
}
