//! The fakes' webhooks against a loopback receiver: signatures, event shapes for each kind of
//! org change, and the sender's drop, duplicate and reorder knobs.

mod common;

use common::{Delivery, received, receiver};

use std::collections::BTreeSet;
use std::time::Duration;

use surveyor_sim::org::Mutation;
use surveyor_sim::webhook::verify_github_signature;
use surveyor_sim::{
    Fate, GithubFake, GitlabFake, Org, OrgSpec, Vendor, WebhookSink, Webhooks, github,
};

const SECRET: &str = "It's a Secret to Everybody";

fn github_events(deliveries: &[Delivery]) -> Vec<(String, String)> {
    deliveries
        .iter()
        .map(|d| {
            let action = d.json()["action"].as_str().unwrap_or("").to_string();
            (d.header("x-github-event").to_string(), action)
        })
        .collect()
}

#[tokio::test]
async fn a_rename_is_a_signed_repository_renamed_event_with_the_old_name() {
    let org = Org::generate(&OrgSpec::small());
    let old = org.repos[3].name.clone();
    let id = org.repos[3].id;
    let fake = GithubFake::start(vec![org]).await.unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    fake.with_org("acme", |o| o.rename_repo(3, "renamed-repo"));
    hooks.settled().await;

    let got = received(&inbox);
    assert_eq!(got.len(), 1, "{:?}", github_events(&got));
    let d = &got[0];
    assert_eq!(d.header("x-github-event"), "repository");
    assert_eq!(d.header("content-type"), "application/json");
    let signature = d.header("x-hub-signature-256");
    assert!(verify_github_signature(SECRET, &d.body, signature));
    assert!(!verify_github_signature(
        "another secret",
        &d.body,
        signature
    ));
    let mut tampered = d.body.to_vec();
    tampered[0] = b' ';
    assert!(!verify_github_signature(SECRET, &tampered, signature));
    assert!(uuid::Uuid::parse_str(d.header("x-github-delivery")).is_ok());

    let body = d.json();
    assert_eq!(body["action"], "renamed");
    assert_eq!(body["changes"]["repository"]["name"]["from"], old.as_str());
    assert_eq!(body["repository"]["name"], "renamed-repo");
    assert_eq!(body["repository"]["full_name"], "acme/renamed-repo");
    assert_eq!(body["repository"]["id"], id);
    assert_eq!(body["organization"]["login"], "acme");

    let planted = hooks.planted();
    assert_eq!(planted.sent().len(), 1);
    assert_eq!(planted.deliveries[0].subject.id, id);
    assert_eq!(planted.deliveries[0].answers, vec![Ok(200)]);
    assert_eq!(
        planted.deliveries[0].delivery_id,
        d.header("x-github-delivery")
    );
}

#[tokio::test]
async fn a_codeowners_change_is_a_push_to_the_default_branch_touching_it() {
    let org = Org::generate(&OrgSpec::small());
    let repo = &org.repos[5];
    let path = repo
        .files
        .keys()
        .find(|k| k.ends_with("CODEOWNERS"))
        .unwrap()
        .clone();
    let branch = repo.default_branch.clone();
    let team = (repo.owner_team + 1) % org.teams.len();
    let fake = GithubFake::start(vec![org]).await.unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    fake.with_org("acme", |o| o.set_owner(5, team));
    hooks.settled().await;

    let got = received(&inbox);
    assert_eq!(github_events(&got), vec![("push".into(), String::new())]);
    let body = got[0].json();
    assert_eq!(body["ref"], format!("refs/heads/{branch}"));
    assert_eq!(body["commits"][0]["modified"], serde_json::json!([path]));
    assert_eq!(body["head_commit"]["id"], body["after"]);
    assert_ne!(body["before"], body["after"]);
    assert!(verify_github_signature(
        SECRET,
        &got[0].body,
        got[0].header("x-hub-signature-256")
    ));
}

#[tokio::test]
async fn every_kind_of_change_is_announced_with_unique_delivery_ids() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GithubFake::start(vec![org]).await.unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    let mut expected: Vec<(String, String)> = Vec::new();
    for kind in Mutation::ALL {
        fake.with_org("acme", |o| o.mutate_as(kind))
            .flatten()
            .unwrap_or_else(|| panic!("{kind:?} applies"));
        let first = match kind {
            Mutation::RenameRepo => Some(("repository", "renamed")),
            Mutation::ChangeOwner => Some(("push", "")),
            // The cluster is not GitHub's business.
            Mutation::RemoveWorkload => None,
            Mutation::DisbandTeam => Some(("team", "deleted")),
            Mutation::AddRepo => Some(("repository", "created")),
            Mutation::PersonLeaves => Some(("membership", "removed")),
            Mutation::ArchiveRepo => Some(("repository", "archived")),
            Mutation::DeleteRepo => Some(("repository", "deleted")),
        };
        if let Some((e, a)) = first {
            expected.push((e.into(), a.into()));
        }
        if kind == Mutation::AddRepo {
            expected.push(("push".into(), String::new()));
        }
    }
    hooks.settled().await;
    let got = github_events(&received(&inbox));
    // Leaving the org: a membership event per team, then organization member_removed.
    let mut collapsed: Vec<(String, String)> = Vec::new();
    for e in got.clone() {
        if e.0 == "organization" {
            assert_eq!(e.1, "member_removed");
            continue;
        }
        if collapsed.last() != Some(&e) || e.0 != "membership" {
            collapsed.push(e);
        }
    }
    assert_eq!(collapsed, expected, "{got:?}");
    assert_eq!(
        got.iter().filter(|e| e.0 == "organization").count(),
        1,
        "{got:?}"
    );
    let ids: BTreeSet<String> = received(&inbox)
        .iter()
        .map(|d| d.header("x-github-delivery").to_string())
        .collect();
    assert_eq!(ids.len(), got.len(), "delivery ids are unique");
}

#[tokio::test]
async fn drop_everything_sends_nothing_and_records_every_event() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GithubFake::start(vec![org.clone()]).await.unwrap();
    let (url, inbox) = receiver().await;
    let sink = WebhookSink {
        drop: 1.0,
        ..WebhookSink::reliable(&url, SECRET)
    };
    let hooks = fake.send_webhooks(sink).await;
    let mut changed = org;
    for _ in 0..6 {
        changed.mutate();
    }
    let events = github::webhook_events(fake.url(), &fake.org("acme").unwrap(), &changed);
    assert!(events.len() >= 6, "{}", events.len());
    fake.with_org("acme", |o| *o = changed.clone());
    hooks.settled().await;
    // A witness sent after the drops, through a reliable sender, arrives alone.
    let witness = Webhooks::start(Vendor::GitHub, WebhookSink::reliable(&url, SECRET)).await;
    witness.post(events[..1].to_vec());
    witness.settled().await;

    assert_eq!(received(&inbox).len(), 1);
    let planted = hooks.planted();
    assert_eq!(planted.deliveries.len(), events.len());
    assert_eq!(planted.dropped().len(), events.len());
    assert!(planted.sent().is_empty());
    let subjects: Vec<_> = planted
        .dropped()
        .iter()
        .map(|d| d.subject.clone())
        .collect();
    let expected: Vec<_> = events.iter().map(|e| e.subject.clone()).collect();
    assert_eq!(subjects, expected);
    assert!(planted.deliveries.iter().all(|d| d.answers.is_empty()));
}

#[tokio::test]
async fn duplicate_everything_sends_each_event_twice_under_one_id() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GithubFake::start(vec![org]).await.unwrap();
    let (url, inbox) = receiver().await;
    let sink = WebhookSink {
        duplicate: 1.0,
        ..WebhookSink::reliable(&url, SECRET)
    };
    let hooks = fake.send_webhooks(sink).await;
    fake.with_org("acme", |o| {
        o.rename_repo(1, "one");
        o.rename_repo(2, "two");
        o.archive_repo(3);
    });
    hooks.settled().await;

    let got = received(&inbox);
    assert_eq!(got.len(), 6);
    let planted = hooks.planted();
    assert_eq!(planted.duplicated().len(), 3);
    for p in &planted.deliveries {
        assert_eq!(p.fate, Fate::Duplicated);
        assert_eq!(p.answers, vec![Ok(200), Ok(200)]);
        let copies: Vec<&Delivery> = got
            .iter()
            .filter(|d| d.header("x-github-delivery") == p.delivery_id)
            .collect();
        assert_eq!(copies.len(), 2, "{}", p.delivery_id);
        assert_eq!(copies[0].body, copies[1].body);
    }
    let ids: BTreeSet<&str> = got.iter().map(|d| d.header("x-github-delivery")).collect();
    assert_eq!(ids.len(), 3);
}

/// The events of eight changes made at once.
fn eight_changes() -> Vec<surveyor_sim::Event> {
    let before = Org::generate(&OrgSpec::small());
    let mut after = before.clone();
    for i in 0..8 {
        after.rename_repo(i, &format!("renamed-{i}"));
    }
    github::webhook_events("http://127.0.0.1:1", &before, &after)
}

async fn reordered(seed: u64) -> Vec<String> {
    let (url, inbox) = receiver().await;
    let sink = WebhookSink {
        reorder: true,
        seed,
        ..WebhookSink::reliable(&url, SECRET)
    };
    let hooks = Webhooks::start(Vendor::GitHub, sink).await;
    hooks.post(eight_changes());
    hooks.settled().await;
    let names: Vec<String> = received(&inbox)
        .iter()
        .map(|d| d.json()["repository"]["name"].as_str().unwrap().to_string())
        .collect();
    let planted: Vec<String> = hooks
        .planted()
        .deliveries
        .iter()
        .map(|d| d.subject.name.trim_start_matches("acme/").to_string())
        .collect();
    assert_eq!(names, planted, "sent in the order planted");
    names
}

#[tokio::test]
async fn reorder_shuffles_deterministically_by_seed() {
    let original: Vec<String> = (0..8).map(|i| format!("renamed-{i}")).collect();
    let a = reordered(7).await;
    assert_ne!(a, original);
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(sorted, original, "nothing lost or added");
    assert_eq!(reordered(7).await, a, "same seed, same order");
    assert_ne!(reordered(8).await, a, "another seed, another order");
}

#[tokio::test]
async fn the_same_seed_plants_the_same_fates_and_ids() {
    let plant = |seed| async move {
        let (url, _inbox) = receiver().await;
        let sink = WebhookSink {
            drop: 0.4,
            duplicate: 0.3,
            delay: Duration::ZERO..Duration::from_millis(5),
            seed,
            ..WebhookSink::reliable(&url, SECRET)
        };
        let hooks = Webhooks::start(Vendor::GitHub, sink).await;
        hooks.post(eight_changes());
        hooks.settled().await;
        hooks
            .planted()
            .deliveries
            .into_iter()
            .map(|d| (d.delivery_id, d.fate, d.delay))
            .collect::<Vec<_>>()
    };
    let a = plant(3).await;
    assert_eq!(plant(3).await, a);
    assert_ne!(plant(4).await, a);
    assert!(a.iter().any(|d| d.1 == Fate::Dropped) && a.iter().any(|d| d.1 != Fate::Dropped));
}

#[tokio::test]
async fn a_receiver_that_is_gone_is_recorded_not_fatal() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    drop(listener);
    let hooks = Webhooks::start(Vendor::GitHub, WebhookSink::reliable(&url, SECRET)).await;
    hooks.post(eight_changes());
    hooks.settled().await;
    let planted = hooks.planted();
    assert_eq!(planted.failed().len(), 8);
    assert!(
        planted
            .deliveries
            .iter()
            .all(|d| matches!(d.answers[..], [Err(_)]))
    );
}

#[tokio::test]
async fn gitlab_group_hooks_carry_the_token_and_name_the_change() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org.clone()).await.unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    // A repository without a descriptor, whose only file to change is CODEOWNERS (a
    // descriptor names the project's path, which moves with the owner's group).
    let index = (0..org.repos.len())
        .find(|i| i % 7 != 0 && !org.repos[*i].files.contains_key("catalog-info.yaml"))
        .unwrap();
    let repo = &org.repos[index];
    let team = (repo.owner_team + 1) % org.teams.len();
    fake.with_org(|o| o.set_owner(index, team));
    let added = fake.with_org(|o| o.add_repo(0)).unwrap();
    fake.with_org(|o| o.delete_repo(7));
    assert_ne!(index, 7);
    hooks.settled().await;

    let got = received(&inbox);
    let kinds: Vec<(String, String)> = got
        .iter()
        .map(|d| {
            let b = d.json();
            (
                d.header("x-gitlab-event").to_string(),
                b["event_name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let strs: Vec<(&str, &str)> = kinds
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        strs,
        vec![
            ("Push Hook", "push"),
            ("Project Hook", "project_create"),
            ("Push Hook", "push"),
            ("Project Hook", "project_destroy"),
        ]
    );
    for d in &got {
        assert_eq!(d.header("x-gitlab-token"), SECRET);
        assert!(uuid::Uuid::parse_str(d.header("x-gitlab-event-uuid")).is_ok());
        assert_eq!(d.header("idempotency-key"), d.header("x-gitlab-event-uuid"));
    }
    let push = got[0].json();
    assert_eq!(push["object_kind"], "push");
    assert_eq!(push["project_id"], repo.id);
    let touched = push["commits"][0]["modified"].as_array().unwrap();
    assert_eq!(touched.len(), 1);
    assert!(touched[0].as_str().unwrap().ends_with("CODEOWNERS"));
    let created = got[1].json();
    let new_repo = &fake.org().repos[added];
    assert_eq!(created["project_id"], new_repo.id);
    assert!(
        created["path_with_namespace"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{}", new_repo.name))
    );
    assert_eq!(got[3].json()["project_id"], org.repos[7].id);
}

#[tokio::test]
async fn gitlab_announces_subgroups_and_members() {
    let org = Org::generate(&OrgSpec::small());
    let fake = GitlabFake::start(org).await.unwrap();
    let (url, inbox) = receiver().await;
    let hooks = fake
        .send_webhooks(WebhookSink::reliable(&url, SECRET))
        .await;
    // In this order: a person whose only team was disbanded first would leave no group.
    fake.with_org(|o| o.mutate_as(Mutation::PersonLeaves));
    fake.with_org(|o| o.mutate_as(Mutation::DisbandTeam));
    hooks.settled().await;
    let names: Vec<String> = received(&inbox)
        .iter()
        .map(|d| {
            format!(
                "{}:{}",
                d.header("x-gitlab-event"),
                d.json()["event_name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        names.contains(&"Subgroup Hook:subgroup_destroy".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"Member Hook:user_remove_from_group".to_string()),
        "{names:?}"
    );
}
