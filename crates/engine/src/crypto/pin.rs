//! PIN hashes (Argon2id with a pepper), and the gate every one of them passes.
//!
//! One PIN check is 19 MiB of memory and about 25 ms of a CPU. Unbounded, N wrong PINs at once
//! cost N × 19 MiB: 20 at once took a daemon under `MemoryMax=256M` down, and glibc kept the
//! arenas after. So every Argon2 run (a check, the equal-cost burn for a user or token that
//! doesn't exist, a new hash) waits for a place at the [`Gate`]: at most `pin_hash_parallel`
//! run at once, each in memory allocated once and reused (wiped after every run), so the
//! hashes' memory never exceeds `pin_hash_parallel` × 19 MiB, however many attempts arrive.
//! Waiting attempts are served in turn across their queues (a login's source): a flood from
//! one source delays another source's hash by at most one hash per waiting source.

use super::{ct_eq, Pepper};
use crate::error::{Error, Result};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::Block;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use zeroize::{Zeroize, Zeroizing};

/// Argon2id cost for PINs: OWASP's minimum (19 MiB, 2 passes, 1 lane). One check costs about
/// 25 ms on this machine (`cargo bench --bench engine` prints it), inside the 50 ms budget. The
/// cost is stored in each PHC string, so a hash made with other parameters still verifies and
/// is replaced on the next good login ([`PinCheck::RightOutdated`]).
const PIN_M_COST: u32 = 19 * 1024;
const PIN_T_COST: u32 = 2;
const PIN_P_COST: u32 = 1;

/// The memory of one PIN hash, in bytes (what each place of the gate holds).
pub const PIN_HASH_MEMORY: usize = PIN_M_COST as usize * Block::SIZE;

/// The `keyid` a PHC string carries when the pepper went into it; a hash without it is from
/// before the pepper (and is verified without one, then replaced).
const PEPPER_KEYID: &[u8] = b"pepper1";

fn pin_params() -> Result<argon2::Params> {
    let mut b = argon2::ParamsBuilder::new();
    b.m_cost(PIN_M_COST).t_cost(PIN_T_COST).p_cost(PIN_P_COST);
    argon2::KeyId::new(PEPPER_KEYID)
        .map(|k| b.keyid(k))
        .and_then(|b| b.build())
        .map_err(|e| Error::invalid(format!("PIN hash parameters: {e}")))
}

/// Whose turn a PIN hash waits for at the gate, and how many may run at once.
#[derive(Debug, Clone, Copy)]
pub struct Turn<'a> {
    /// The queue it waits in: a login's source. Queues are served in turn.
    pub queue: &'a str,
    /// `pin_hash_parallel` (the latest config asked with wins).
    pub parallel: usize,
}

impl Turn<'_> {
    /// A queue of its own, as many at once as this process may use CPUs (the `tessera`
    /// command's hashes, tests).
    pub fn alone() -> Turn<'static> {
        Turn {
            queue: "",
            parallel: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// PIN hashing with one pepper, in one queue of the gate.
pub struct PinHasher<'a> {
    pub pepper: &'a Pepper,
    pub turn: Turn<'a>,
}

/// What a PIN check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    Wrong,
    Right,
    /// Right, but the hash has older parameters or no pepper: store a new one.
    RightOutdated,
}

impl PinCheck {
    pub fn is_right(self) -> bool {
        self != PinCheck::Wrong
    }
}

impl PinHasher<'_> {
    /// Hashes a PIN to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1,keyid=...$salt$hash`).
    pub fn hash(&self, pin: &[u8]) -> Result<String> {
        let failed = |e: &dyn std::fmt::Display| Error::invalid(format!("PIN hashing failed: {e}"));
        let params = pin_params()?;
        let argon = argon2_with(Some(self.pepper), None, params.clone())?;
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
        let mut out = Zeroizing::new([0u8; argon2::Params::DEFAULT_OUTPUT_LEN]);
        self.run(&argon, pin, salt_bytes, &mut out[..])
            .map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: argon2::Algorithm::Argon2id.ident(),
            version: Some(argon2::Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out[..]).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Checks a PIN against a stored PHC string. An unparsable hash never matches.
    pub fn check(&self, pin: &[u8], phc: &str) -> PinCheck {
        let Ok(h) = PasswordHash::new(phc) else {
            return PinCheck::Wrong;
        };
        let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
            return PinCheck::Wrong;
        };
        let Ok(params) = argon2::Params::try_from(&h) else {
            return PinCheck::Wrong;
        };
        let peppered = params.keyid() == PEPPER_KEYID;
        let current = peppered
            && params.m_cost() == PIN_M_COST
            && params.t_cost() == PIN_T_COST
            && params.p_cost() == PIN_P_COST;
        let Ok(argon) = argon2_with(peppered.then_some(self.pepper), Some(&h), params) else {
            return PinCheck::Wrong;
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
            return PinCheck::Wrong;
        };
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        #[cfg(test)]
        PIN_CHECKS.with(|n| n.set(n.get() + 1));
        if self.run(&argon, pin, salt_bytes, &mut out).is_err() {
            return PinCheck::Wrong;
        }
        match (ct_eq(&out, expected.as_bytes()), current) {
            (false, _) => PinCheck::Wrong,
            (true, true) => PinCheck::Right,
            (true, false) => PinCheck::RightOutdated,
        }
    }

    /// Work equal to one PIN check, for users and tokens that don't exist, so that timing does
    /// not tell them apart from a wrong PIN. It waits at the gate like a check.
    pub fn burn(&self, pin: &[u8]) {
        let _ = self.check(pin, DUMMY_PIN_HASH);
    }

    /// One Argon2 run, in a place of the gate and its memory.
    fn run(
        &self,
        argon: &argon2::Argon2<'_>,
        pin: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> std::result::Result<(), argon2::Error> {
        let mut place = GATE.enter(&self.turn);
        let blocks = argon.params().block_count();
        match place.memory.get_mut(..blocks) {
            Some(memory) => argon.hash_password_into_with_memory(pin, salt, out, memory),
            // A stored hash that asks for more memory than ours (made elsewhere): its own
            // memory, once; the next good login replaces it with one of ours. Still one place.
            None => argon.hash_password_into(pin, salt, out),
        }
    }
}

fn argon2_with<'p>(
    pepper: Option<&'p Pepper>,
    stored: Option<&PasswordHash<'_>>,
    params: argon2::Params,
) -> Result<argon2::Argon2<'p>> {
    let bad = |e: &dyn std::fmt::Display| Error::invalid(format!("PIN hashing: {e}"));
    let (alg, ver) = match stored {
        Some(h) => (
            argon2::Algorithm::try_from(h.algorithm).map_err(|e| bad(&e))?,
            h.version
                .map(argon2::Version::try_from)
                .transpose()
                .map_err(|e| bad(&e))?
                .unwrap_or_default(),
        ),
        None => (argon2::Algorithm::Argon2id, argon2::Version::V0x13),
    };
    match pepper {
        Some(p) => {
            argon2::Argon2::new_with_secret(p.0.as_ref(), alg, ver, params).map_err(|e| bad(&e))
        }
        None => Ok(argon2::Argon2::new(alg, ver, params)),
    }
}

/// Hashes a PIN (in a queue of its own: the `tessera` command).
pub fn hash_pin(pin: &[u8], pepper: &Pepper) -> Result<String> {
    PinHasher {
        pepper,
        turn: Turn::alone(),
    }
    .hash(pin)
}

/// Checks a PIN against a stored PHC string (in a queue of its own).
pub fn check_pin(pin: &[u8], phc: &str, pepper: &Pepper) -> PinCheck {
    PinHasher {
        pepper,
        turn: Turn::alone(),
    }
    .check(pin, phc)
}

/// Whether `pin` is the PIN of `phc`.
pub fn verify_pin(pin: &[u8], phc: &str, pepper: &Pepper) -> bool {
    check_pin(pin, phc, pepper).is_right()
}

/// A PHC string with the parameters of `hash_pin` (a test keeps them in step); it matches no
/// PIN under any pepper. A constant rather than hashed at first use: a fresh process would
/// otherwise pay one extra Argon2 run for an unknown user only.
const DUMMY_PIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1,keyid=cGVwcGVyMQ$73vR8yhihozNPp/yPJOE9w$Ub6spAHJZpvUM5MRuXf8fjvxBkeE1r8gPMltUFQ9gQM";

#[cfg(test)]
thread_local! {
    /// The Argon2 runs of [`PinHasher::check`] on this thread (burnt ones too), for tests of
    /// how much work a login does.
    static PIN_CHECKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many PIN checks (Argon2 runs) this thread made so far.
#[cfg(test)]
pub(crate) fn pin_checks() -> u64 {
    PIN_CHECKS.with(|n| n.get())
}

/// The process's one gate.
static GATE: Gate = Gate::new();

/// At most `limit` PIN hashes at once, each in memory of its own that is reused; the waiting
/// ones served in turn across queues.
pub struct Gate {
    state: Mutex<GateState>,
    turned: Condvar,
}

struct GateState {
    limit: usize,
    /// Places taken.
    running: usize,
    /// Memory of places given back, wiped, for the next ones.
    idle: Vec<Box<[Block]>>,
    /// Memory allocated in all (idle and in use): never above the largest `limit` asked for.
    allocated: usize,
    next_ticket: u64,
    /// The tickets waiting in each queue, oldest first.
    waiting: BTreeMap<String, VecDeque<u64>>,
    /// The queues with waiting tickets, in the order they are served (round robin).
    order: VecDeque<String>,
    /// Tickets let in whose holders have not woken yet.
    admitted: Vec<u64>,
}

/// A place at the gate and its memory: given back (wiped) when dropped.
struct Place<'g> {
    gate: &'g Gate,
    memory: Box<[Block]>,
}

impl Gate {
    const fn new() -> Gate {
        Gate {
            state: Mutex::new(GateState {
                limit: 1,
                running: 0,
                idle: Vec::new(),
                allocated: 0,
                next_ticket: 0,
                waiting: BTreeMap::new(),
                order: VecDeque::new(),
                admitted: Vec::new(),
            }),
            turned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, GateState> {
        // Nothing panics while the lock is held; if something did, the state is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a place in `turn`'s queue.
    fn enter(&self, turn: &Turn) -> Place<'_> {
        let mut st = self.lock();
        st.limit = turn.parallel.max(1);
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        let queue = st.waiting.entry(turn.queue.to_string()).or_default();
        queue.push_back(ticket);
        if queue.len() == 1 {
            st.order.push_back(turn.queue.to_string());
        }
        self.admit(&mut st);
        loop {
            if let Some(i) = st.admitted.iter().position(|t| *t == ticket) {
                st.admitted.swap_remove(i);
                break;
            }
            st = self.turned.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        let memory = st.idle.pop();
        let fresh = memory.is_none();
        if fresh {
            st.allocated += 1;
        }
        drop(st);
        Place {
            gate: self,
            // Allocated outside the lock: writing 19 MiB takes milliseconds.
            memory: memory.unwrap_or_else(|| vec![Block::default(); PIN_M_COST as usize].into()),
        }
    }

    /// Lets in the next waiting tickets, one queue after another, while places are free.
    fn admit(&self, st: &mut GateState) {
        let mut any = false;
        while st.running < st.limit {
            let Some(queue) = st.order.pop_front() else {
                break;
            };
            let Some(tickets) = st.waiting.get_mut(&queue) else {
                continue;
            };
            let Some(ticket) = tickets.pop_front() else {
                st.waiting.remove(&queue);
                continue;
            };
            if tickets.is_empty() {
                st.waiting.remove(&queue);
            } else {
                st.order.push_back(queue);
            }
            st.admitted.push(ticket);
            st.running += 1;
            any = true;
        }
        if any {
            self.turned.notify_all();
        }
    }

    /// What the process's gate holds now: (places taken, memories allocated, tickets
    /// waiting).
    pub fn load() -> (usize, usize, usize) {
        GATE.load_of()
    }

    fn load_of(&self) -> (usize, usize, usize) {
        let st = self.lock();
        let waiting = st.waiting.values().map(VecDeque::len).sum();
        (st.running, st.allocated, waiting)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        // What Argon2 left in it is derived from the PIN: wiped before anyone else's run.
        self.memory.zeroize();
        let memory = std::mem::take(&mut self.memory);
        let gate = self.gate;
        let mut st = gate.lock();
        st.running -= 1;
        // Kept while no more exist than places; freed past them (a lower limit after a
        // reload), so that memories are allocated once, not once a hash.
        if st.allocated <= st.limit {
            st.idle.push(memory);
        } else {
            st.allocated -= 1;
        }
        gate.admit(&mut st);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::StoreKey;

    #[test]
    fn pin_hash_verifies_only_the_pin_and_only_with_its_key() {
        let key = StoreKey::generate();
        let h = hash_pin(b"1234", &key.pepper()).unwrap();
        assert!(
            h.starts_with("$argon2id$v=19$m=19456,t=2,p=1,keyid="),
            "{h}"
        );
        assert_eq!(check_pin(b"1234", &h, &key.pepper()), PinCheck::Right);
        assert!(!verify_pin(b"12345", &h, &key.pepper()));
        assert!(!verify_pin(b"1234", "garbage", &key.pepper()));
        // A stolen store without the key file: the right PIN does not verify.
        assert!(!verify_pin(b"1234", &h, &StoreKey::generate().pepper()));
    }

    /// The hashes made through the gate are the argon2 crate's own: it verifies them, and we
    /// verify its.
    #[test]
    fn our_hashes_are_the_crates_and_the_crates_are_ours() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let key = StoreKey::generate();
        let pepper = key.pepper();
        let ours = hash_pin(b"2468", &pepper).unwrap();
        let argon = argon2_with(Some(&pepper), None, pin_params().unwrap()).unwrap();
        assert!(argon
            .verify_password(b"2468", &PasswordHash::new(&ours).unwrap())
            .is_ok());
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let theirs = argon.hash_password(b"2468", &salt).unwrap().to_string();
        assert_eq!(check_pin(b"2468", &theirs, &pepper), PinCheck::Right);
        assert_eq!(check_pin(b"2469", &theirs, &pepper), PinCheck::Wrong);
    }

    #[test]
    fn an_old_hash_verifies_and_asks_to_be_replaced() {
        use argon2::password_hash::PasswordHasher;
        // As tessera made them before: 8 MiB, no pepper.
        let old = "$argon2id$v=19$m=8192,t=2,p=1$c2FsdHNhbHRzYWx0$";
        let params = argon2::Params::new(8192, 2, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap();
        let h = a.hash_password(b"1234", &salt).unwrap().to_string();
        assert!(h.starts_with(old), "{h}");
        let pepper = StoreKey::generate().pepper();
        assert_eq!(check_pin(b"1234", &h, &pepper), PinCheck::RightOutdated);
        assert_eq!(check_pin(b"4321", &h, &pepper), PinCheck::Wrong);
        // More memory than a place holds (64 MiB): verified all the same.
        let big = argon2::Params::new(64 * 1024, 1, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, big);
        let h = a.hash_password(b"1234", &salt).unwrap().to_string();
        assert_eq!(check_pin(b"1234", &h, &pepper), PinCheck::RightOutdated);
    }

    #[test]
    fn the_dummy_pin_hash_costs_what_a_real_one_does() {
        // Same algorithm, parameters and pepper marker as hash_pin, so burning a check takes
        // as long as one.
        let real = hash_pin(b"1234", &StoreKey::generate().pepper()).unwrap();
        let params = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
        assert_eq!(params(DUMMY_PIN_HASH), params(&real));
        assert!(argon2::Params::try_from(&PasswordHash::new(DUMMY_PIN_HASH).unwrap()).is_ok());
    }

    /// 24 hashes at once from 3 queues at a gate of 2 places: never more than 2 run, never
    /// more than 2 memories exist, and the queues are served in turn (the lone hash of a
    /// third queue, arriving behind 16 of one queue and 7 of another, waits for at most a
    /// few).
    #[test]
    fn the_gate_admits_at_most_its_limit_in_turn_across_queues() {
        let gate = Gate::new();
        let order = Mutex::new(Vec::new());
        let most = std::sync::atomic::AtomicUsize::new(0);
        let run = |queue: &'static str| {
            let place = gate.enter(&Turn { queue, parallel: 2 });
            let (running, allocated, _) = gate.load_of();
            most.fetch_max(running.max(allocated), std::sync::atomic::Ordering::SeqCst);
            assert_eq!(place.memory.len(), PIN_M_COST as usize);
            let wiped = place
                .memory
                .iter()
                .all(|b| b.as_ref().iter().all(|w| *w == 0));
            assert!(wiped, "the memory comes wiped");
            #[allow(clippy::disallowed_methods)] // a hash's time
            std::thread::sleep(std::time::Duration::from_millis(5));
            order.lock().unwrap().push(queue);
            drop(place);
        };
        std::thread::scope(|s| {
            let run = &run;
            let flood: Vec<_> = (0..16).map(|_| s.spawn(move || run("flood"))).collect();
            let other: Vec<_> = (0..7).map(|_| s.spawn(move || run("other"))).collect();
            // Behind everything already queued.
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(std::time::Duration::from_millis(20));
            s.spawn(move || run("late")).join().unwrap();
            for h in flood.into_iter().chain(other) {
                h.join().unwrap();
            }
        });
        assert!(most.load(std::sync::atomic::Ordering::SeqCst) <= 2);
        let order = order.into_inner().unwrap();
        let late = order.iter().position(|q| *q == "late").unwrap();
        assert!(late <= 8, "the lone hash came {late}th: {order:?}");
        let (running, allocated, waiting) = gate.load_of();
        assert_eq!((running, waiting), (0, 0));
        assert!(allocated <= 2, "{allocated}");
    }
}
