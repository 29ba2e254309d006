//! The contract every `KvStore` keeps, run by each backend's tests on a real database:
//! conditions, counters, listing order, expiry, apps that never see each other's keys, and
//! writes that stay atomic when many arrive at once.

use bytes::Bytes;
use deployment::AppKey;

use crate::store::{KvStore, KvWrite, StoredCondition};

/// Checks `store`, which must be empty.
pub async fn check(store: &dyn KvStore) {
    let write = |key: &str, value: &str, only_if, expiration| KvWrite {
        key: key.to_owned(),
        value: Bytes::from(value.to_owned()),
        metadata: None,
        expiration,
        only_if,
        sealed: None,
    };
    let mine = AppKey::new("growth", "poll");
    let theirs = AppKey::new("other", "poll");
    let now = 1_000;
    let first = store.put(&mine, write("a", "1", None, None), now).await.unwrap().unwrap();
    assert_eq!(store.put(&mine, write("a", "2", Some(StoredCondition::Absent), None), now).await.unwrap(), None);
    assert_eq!(
        store.put(&mine, write("a", "3", Some(StoredCondition::Version(first + 1)), None), now).await.unwrap(),
        None
    );
    assert!(
        store.put(&mine, write("a", "4", Some(StoredCondition::Version(first)), None), now).await.unwrap().is_some()
    );
    assert_eq!(&store.get(&mine, "a", now).await.unwrap().unwrap().value[..], b"4");
    assert_eq!(store.get(&theirs, "a", now).await.unwrap(), None, "another namespace's app of the same name");

    assert_eq!(store.increment(&mine, "n", 5, now).await.unwrap(), Ok(5));
    assert_eq!(store.increment(&mine, "n", -2, now).await.unwrap(), Ok(3));
    assert!(store.increment(&mine, "a", 1, now).await.unwrap().is_ok(), "\"4\" is an integer");
    store.put(&mine, write("word", "hello", None, None), now).await.unwrap();
    assert_eq!(store.increment(&mine, "word", 1, now).await.unwrap(), Err("hello".to_owned()));

    store.put(&mine, write("b:2", "x", None, None), now).await.unwrap();
    store.put(&mine, write("b:1", "x", None, None), now).await.unwrap();
    store.put(&mine, write("b:3", "x", None, Some(now + 10)), now).await.unwrap();
    store.put(&theirs, write("b:0", "x", None, None), now).await.unwrap();
    let names = |keys: Vec<runtime::kv::KvKey>| keys.into_iter().map(|key| key.name).collect::<Vec<_>>();
    assert_eq!(names(store.list(&mine, "b:", None, 10, now).await.unwrap()), ["b:1", "b:2", "b:3"]);
    assert_eq!(names(store.list(&mine, "b:", Some("b:1"), 1, now).await.unwrap()), ["b:2"]);
    // Expired keys are never answered, whether or not the sweep has run.
    assert_eq!(names(store.list(&mine, "b:", None, 10, now + 10).await.unwrap()), ["b:1", "b:2"]);
    assert_eq!(store.get(&mine, "b:3", now + 10).await.unwrap(), None);
    assert!(
        store.put(&mine, write("b:3", "y", Some(StoredCondition::Absent), None), now + 10).await.unwrap().is_some()
    );
    store.put(&mine, write("gone", "x", None, Some(now + 5)), now).await.unwrap();
    assert_eq!(store.sweep_expired(now + 5, 100).await.unwrap(), 1);

    assert_eq!(store.usage(&theirs).await.unwrap().keys, 1);
    assert_eq!(store.delete_app(&mine).await.unwrap(), 6, "a, n, word, b:1, b:2, b:3");
    assert_eq!(store.usage(&theirs).await.unwrap().keys, 1, "deleting an app leaves the others");

    // Keys sort as UTF-8 bytes, whatever the database's collation: "B" < "a" < "é".
    for key in ["é", "a", "B"] {
        store.put(&mine, write(&format!("order:{key}"), "x", None, None), now).await.unwrap();
    }
    assert_eq!(names(store.list(&mine, "order:", None, 10, now).await.unwrap()), ["order:B", "order:a", "order:é"]);
    // A prefix is a prefix, not a pattern.
    store.put(&mine, write("p%x", "x", None, None), now).await.unwrap();
    store.put(&mine, write("p_y", "x", None, None), now).await.unwrap();
    assert_eq!(names(store.list(&mine, "p%", None, 10, now).await.unwrap()), ["p%x"]);

    // A sealed value comes back with the data key version it is sealed under.
    let sealed = KvWrite { sealed: Some(3), ..write("sealed", "ciphertext", None, None) };
    store.put(&mine, sealed, now).await.unwrap();
    assert_eq!(store.get(&mine, "sealed", now).await.unwrap().unwrap().sealed, Some(3));
    assert_eq!(store.get(&mine, "order:a", now).await.unwrap().unwrap().sealed, None);

    // Many writes at once: every increment counts, exactly one lock is taken.
    let app = AppKey::new("growth", "busy");
    let increments = (0..100).map(|_| store.increment(&app, "count", 1, now));
    for result in futures::future::join_all(increments).await {
        assert!(result.unwrap().is_ok());
    }
    assert_eq!(store.increment(&app, "count", 0, now).await.unwrap(), Ok(100));
    let locks =
        (0..20).map(|i| store.put(&app, write("lock", &i.to_string(), Some(StoredCondition::Absent), None), now));
    let taken =
        futures::future::join_all(locks).await.into_iter().filter(|result| matches!(result, Ok(Some(_)))).count();
    assert_eq!(taken, 1, "exactly one writer takes the lock");
}
