//! Hundreds of profiles on the simulated clock against the scripted STS: a few calls in flight
//! however many profiles warm up, none sent twice behind a slow STS, the profile a request waits
//! for first, and refreshes spread over a window that grows with the number of profiles.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use credd_proto::ProfileState;
use tokio::sync::watch;

use super::tests::{config_text, credentials_file, start_engine, t0, until};
use super::{Engine, schedule};
use crate::clock::Clock;
use crate::config::Config;
use crate::lock;
use crate::sts::gate::IN_FLIGHT;
use crate::testing::sts::{Call, FakeSts, Reply};

const HOUR: Duration = Duration::from_secs(3600);

/// `direct` profiles `d0`.. across 40 accounts, and `chained` profiles `c0`.. each assumed
/// through a direct one.
fn profiles(direct: usize, chained: usize) -> String {
    let mut text = String::new();
    for i in 0..direct {
        let account = 200_000_000_000u64 + (i % 40) as u64;
        text += &format!("[profiles.d{i}]\nrole_arn = \"arn:aws:iam::{account}:role/D{i}\"\n");
    }
    for i in 0..chained {
        let account = 300_000_000_000u64 + (i % 40) as u64;
        let via = i % direct.max(1);
        text += &format!(
            "[profiles.c{i}]\nrole_arn = \"arn:aws:iam::{account}:role/C{i}\"\nvia = \"d{via}\"\n"
        );
    }
    text
}

struct Many {
    engine: Engine,
    sts: FakeSts,
    clock: Clock,
    _config: watch::Sender<Arc<Config>>,
    _dir: tempfile::TempDir,
}

impl Many {
    /// Every AssumeRole answered after `latency`.
    fn start(direct: usize, chained: usize, latency: Duration) -> Many {
        Many::start_scripted(direct, chained, move |c| match c.action.as_str() {
            "AssumeRole" if !latency.is_zero() => Reply::Delayed(latency, Box::new(Reply::Normal)),
            _ => Reply::Normal,
        })
    }

    fn start_scripted(
        direct: usize,
        chained: usize,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Many {
        let dir = tempfile::tempdir().expect("a temp dir");
        let credentials = credentials_file(dir.path());
        let clock = Clock::simulated(t0());
        let (sts, client) = FakeSts::new(&clock);
        sts.script(script);
        let (engine, tx) = start_engine(
            dir.path(),
            &config_text("", &profiles(direct, chained)),
            &clock,
            client,
            Some(credentials),
        );
        Many {
            engine,
            sts,
            clock,
            _config: tx,
            _dir: dir,
        }
    }

    fn count(&self, state: ProfileState) -> usize {
        self.engine
            .profile_status()
            .iter()
            .filter(|p| p.state == state)
            .count()
    }

    fn assumes(&self) -> Vec<Call> {
        self.sts.calls_of("AssumeRole")
    }
}

/// The most calls that overlapped, each `(sent, answered after)`.
fn most_overlapping(calls: &[(SystemTime, Duration)]) -> usize {
    let mut edges: Vec<(SystemTime, i32)> = calls
        .iter()
        .flat_map(|(at, took)| [(*at, 1), (*at + *took, -1)])
        .collect();
    // An end sorts before a start at the same instant: the place was handed on.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    most as usize
}

/// How many calls per role ARN.
fn per_role(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts
            .entry(c.param("RoleArn").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

#[tokio::test(start_paused = true)]
async fn five_hundred_profiles_behind_a_queue_limited_sts_warm_a_few_calls_at_a_time_and_none_twice()
 {
    // An STS that answers one AssumeRole at a time, 200 ms each: 500 calls sent at once would
    // wait up to 100 s for their answer, far past the SDK's 5 s attempt timeout, which would end
    // them and send them again. Queued in credd instead, each one's timeout counts from when it
    // is sent.
    const SERVICE: Duration = Duration::from_millis(200);
    let busy_until = Arc::new(Mutex::new(t0()));
    let answered: Arc<Mutex<Vec<(SystemTime, Duration)>>> = Arc::default();
    let script = {
        let answered = answered.clone();
        move |c: &Call| {
            if c.action != "AssumeRole" {
                return Reply::Normal;
            }
            let mut busy = lock::lock(&busy_until);
            let done = (*busy).max(c.at) + SERVICE;
            *busy = done;
            let took = done.duration_since(c.at).unwrap_or_default();
            lock::lock(&answered).push((c.at, took));
            Reply::Delayed(took, Box::new(Reply::Normal))
        }
    };
    let many = Many::start_scripted(400, 100, script);
    let failing = AtomicUsize::new(0);
    until(&many.clock, "all 500 profiles fresh", || {
        failing.fetch_max(many.count(ProfileState::Failing), Ordering::Relaxed);
        many.count(ProfileState::Fresh) == 500
    })
    .await;
    let calls = many.assumes();
    let twice: Vec<_> = per_role(&calls)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "{} roles called more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert_eq!(calls.len(), 500);
    assert_eq!(failing.into_inner(), 0, "no refresh failed while it queued");
    let overlapping = most_overlapping(&lock::lock(&answered));
    assert!(
        overlapping <= IN_FLIGHT,
        "{overlapping} calls in flight at once"
    );
    assert_eq!(many.engine.sts().peak_in_flight(), IN_FLIGHT);
    let slowest = lock::lock(&answered).iter().map(|(_, took)| *took).max();
    assert!(
        slowest <= Some(SERVICE * IN_FLIGHT as u32),
        "an answer took {slowest:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_profile_a_request_waits_for_goes_ahead_of_the_warm_up_queue() {
    let latency = Duration::from_secs(1);
    let many = Many::start(200, 0, latency);
    // Let the warm-up queue up behind the first calls.
    many.clock.sleep(Duration::from_millis(1500)).await;
    let asked = many.clock.now();
    let served = loop {
        match many.engine.credentials("d199").await {
            Ok(c) => break c,
            Err(_) => assert!(
                many.clock.now() < asked + Duration::from_secs(10),
                "not served in 10 s"
            ),
        }
    };
    assert_eq!(served.account_id, "200000000039");
    let waited = many.clock.now().duration_since(asked).unwrap();
    let calls = many.assumes();
    let position = calls
        .iter()
        .position(|c| c.param("RoleArn").is_some_and(|r| r.ends_with("/D199")))
        .expect("d199 was assumed");
    assert!(
        position <= 3 * IN_FLIGHT,
        "d199 was call {position} of the warm-up (asked for after {} calls), served after {waited:?}",
        calls.iter().filter(|c| c.at <= asked).count()
    );
    assert!(waited <= 3 * latency, "served after {waited:?}");
}

#[tokio::test(start_paused = true)]
async fn refreshes_of_five_hundred_profiles_issued_together_spread_over_500_seconds() {
    let many = Many::start(500, 0, Duration::ZERO);
    until(&many.clock, "two rounds of refreshes", || {
        many.sts.calls_of("AssumeRole").len() >= 1000
    })
    .await;
    let calls = many.assumes();
    let mut by_role: BTreeMap<&str, Vec<SystemTime>> = BTreeMap::new();
    for c in &calls {
        by_role
            .entry(c.param("RoleArn").unwrap_or_default())
            .or_default()
            .push(c.at);
    }
    let (shortest, longest) = schedule::refresh_interval(HOUR, Duration::from_secs(1800), 500);
    let slack = Duration::from_secs(1);
    let mut second_round = Vec::new();
    for times in by_role.values() {
        let gap = times[1].duration_since(times[0]).unwrap();
        assert!(
            gap + slack >= shortest && gap <= longest + slack,
            "a refresh {gap:?} after the last, outside {shortest:?}..{longest:?}"
        );
        second_round.push(times[1]);
    }
    second_round.sort();
    let spread = second_round[499].duration_since(second_round[0]).unwrap();
    assert!(
        spread >= Duration::from_secs(400),
        "the second round spread over {spread:?} only"
    );
    let mut per_second: BTreeMap<u64, usize> = BTreeMap::new();
    for at in &second_round {
        *per_second
            .entry(at.duration_since(t0()).unwrap().as_secs())
            .or_default() += 1;
    }
    let widest = per_second.values().max().copied().unwrap_or(0);
    assert!(
        widest <= 10,
        "{widest} refreshes in the widest second of the second round"
    );
}

#[test]
fn an_idle_profile_worker_is_small() {
    // What every one of 500 idle workers holds; the refresh (and the SDK call in it, tens of kB)
    // is boxed only while it runs.
    let dir = tempfile::tempdir().expect("a temp dir");
    let clock = Clock::simulated(t0());
    let (_sts, client) = FakeSts::new(&clock);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (engine, _tx) = start_engine(
            dir.path(),
            &config_text("", &profiles(1, 0)),
            &clock,
            client,
            Some(credentials_file(dir.path())),
        );
        let slot = engine.slot("d0").expect("the slot");
        let worker = slot.clone().run(engine.clone());
        let size = std::mem::size_of_val(&worker);
        println!("an idle worker's future: {size} bytes");
        assert!(size <= 2048, "an idle worker's future is {size} bytes");
    });
}

#[tokio::test(start_paused = true)]
async fn a_hundred_identity_center_profiles_warm_after_one_login_with_one_call_each() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let profiles: String = (0..100)
        .map(|i| {
            format!(
                "[profiles.s{i}]\nsso_account_id = \"{}\"\nsso_role_name = \"Role{i}\"\n",
                200_000_000_000u64 + (i % 40) as u64
            )
        })
        .collect();
    let text = format!(
        "[daemon]\nlisten = \"127.0.0.1:0\"\n\n[access]\nsource = \"sso\"\n\
         sso_session = \"acme\"\nsso_start_url = \"https://acme.awsapps.com/start\"\n\
         sso_region = \"us-east-1\"\n\n{profiles}"
    );
    let clock = Clock::simulated(t0());
    let (aws, sts) = FakeSts::new(&clock);
    let (engine, _tx) = start_engine(dir.path(), &text, &clock, sts, None);
    let device = credd_proto::BrowserLogin {
        method: Some(credd_proto::LoginMethod::Device),
        display: false,
        region: None,
    };
    let start = engine.login(None, device).await.expect("the login starts");
    assert!(matches!(start, super::LoginStart::Pending(_)));
    aws.sso().approve_devices();
    engine.login_wait().await.expect("the login completes");
    until(&clock, "every profile fresh", || {
        engine
            .profile_status()
            .iter()
            .all(|p| p.state == ProfileState::Fresh)
    })
    .await;
    let calls = aws.calls_of("GetRoleCredentials");
    let mut roles: Vec<String> = calls.iter().map(|c| format!("{:?}", c.params)).collect();
    roles.sort();
    roles.dedup();
    assert_eq!(calls.len(), 100, "one GetRoleCredentials per profile");
    assert_eq!(roles.len(), 100);
}
