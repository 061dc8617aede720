//! The seam to the host's accounts: [`Accounts`] (a name's account, its groups, its uid) and
//! [`SystemAccounts`], the one that asks NSS. Below both the engine and the policy rules, which
//! take it as `&dyn Accounts`; a fixed list stands in for it in unit tests.

/// Who the accounts of this host are: NSS in production, a fixed list in unit tests.
pub trait Accounts {
    /// The account's own name for `name` (NSS's `pw_name`), or `None` for no such account.
    fn canonical(&self, name: &str) -> Option<String>;
    /// The names of the groups the account is in, primary and supplementary.
    fn groups(&self, _user: &str) -> Vec<String> {
        Vec::new()
    }
    /// The account's uid (a login from it is familiar to the account).
    fn uid(&self, _user: &str) -> Option<u32> {
        None
    }
}

/// The accounts NSS knows (`getpwnam_r`).
pub struct SystemAccounts;

impl Accounts for SystemAccounts {
    fn canonical(&self, name: &str) -> Option<String> {
        crate::os::sys::account_name(name)
    }
    fn groups(&self, user: &str) -> Vec<String> {
        crate::os::sys::group_names(user)
    }
    fn uid(&self, user: &str) -> Option<u32> {
        crate::os::sys::account(user).map(|a| a.uid)
    }
}
