//! The `MetaStore` contract.

use imgpipe::keys::ImageId;
use imgpipe::meta::{Declared, ErrorInfo, MetaStore, Metadata, Status, Stored};

fn declared() -> Declared {
    Declared { content_type: "image/jpeg".into(), content_length: 10 }
}

pub async fn contract(meta: &dyn MetaStore) {
    meta.ping().await.unwrap();
    let id = ImageId::new();
    assert!(meta.get(&id).await.unwrap().is_none());

    // Pending items are stored whole and listed.
    let pending = Metadata::pending(id, declared());
    meta.put(&pending).await.unwrap();
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), pending);
    assert!(meta.pending(None).await.unwrap().contains(&id));

    // Idempotent: the same put twice gives the same item.
    meta.put(&pending).await.unwrap();
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), pending);

    // pending -> ready; no longer listed as pending.
    let mut ready = pending.clone();
    ready.status = Status::Ready;
    ready.updated_at = "2030-01-01T00:00:00Z".into();
    assert_eq!(meta.put(&ready).await.unwrap(), Stored::Written);
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), ready);
    assert!(!meta.pending(None).await.unwrap().contains(&id));

    // Never back: a late pending write leaves the ready item as it is.
    assert_eq!(meta.put(&pending).await.unwrap(), Stored::Kept);
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), ready);

    // An older final write does not replace a newer one.
    let mut stale = ready.clone();
    stale.status = Status::Failed;
    stale.updated_at = "2029-12-31T23:59:59Z".into();
    assert_eq!(meta.put(&stale).await.unwrap(), Stored::Kept);
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), ready);

    // Failed is final too, and keeps its error code.
    let other = ImageId::new();
    let mut failed = Metadata::pending(other, declared());
    meta.put(&failed).await.unwrap();
    failed.status = Status::Failed;
    failed.error = Some(ErrorInfo { code: "undecodable".into(), message: "truncated".into() });
    meta.put(&failed).await.unwrap();
    meta.put(&Metadata::pending(other, declared())).await.unwrap();
    let got = meta.get(&other).await.unwrap().unwrap();
    assert_eq!(got.status, Status::Failed);
    assert_eq!(got.error.unwrap().code, "undecodable");

    // pending() lists only pending ids, oldest first.
    let a = ImageId::new();
    let b = ImageId::new();
    let mut first = Metadata::pending(a, declared());
    first.created_at = "2001-01-01T00:00:00Z".into();
    let mut second = Metadata::pending(b, declared());
    second.created_at = "2001-01-01T00:00:01Z".into();
    meta.put(&second).await.unwrap();
    meta.put(&first).await.unwrap();
    let listed = meta.pending(None).await.unwrap();
    let pa = listed.iter().position(|x| *x == a).unwrap();
    let pb = listed.iter().position(|x| *x == b).unwrap();
    assert!(pa < pb, "oldest first");
    assert!(!listed.contains(&id) && !listed.contains(&other));

    // Only those created before a time; an abandoned one is removed, a
    // final one never.
    let older = meta.pending(Some("2001-01-01T00:00:01Z")).await.unwrap();
    assert!(older.contains(&a) && !older.contains(&b), "{older:?}");
    assert!(meta.delete_pending(&a).await.unwrap());
    assert!(meta.get(&a).await.unwrap().is_none());
    assert!(!meta.delete_pending(&a).await.unwrap());
    assert!(!meta.delete_pending(&id).await.unwrap());
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), ready);
}

/// Drop-ins: `claim_source` gives one id per (name, ETag), atomically, and
/// `by_source` the newest image from a name.
pub async fn drop_in_contract(meta: &dyn MetaStore) {
    let key = format!("holiday/{}/caté 1.jpg", ImageId::new());
    assert_eq!(meta.by_source(&key).await.unwrap(), None);

    let first = Metadata::dropped(ImageId::new(), &key, "\"aaa\"", 10);
    let id = meta.claim_source(&first).await.unwrap();
    assert_eq!(id, first.id, "a first claim stores the item it was given");
    let stored = meta.get(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Pending);
    assert_eq!((stored.source_key.as_deref(), stored.source_etag.as_deref()), (Some(key.as_str()), Some("\"aaa\"")));
    assert_eq!(meta.by_source(&key).await.unwrap(), Some(id));

    // The same object again (a duplicate event, a restart): the same id,
    // and no second item.
    let again = Metadata::dropped(ImageId::new(), &key, "\"aaa\"", 10);
    assert_eq!(meta.claim_source(&again).await.unwrap(), id);
    assert!(meta.get(&again.id).await.unwrap().is_none());

    // Still the same once the image is final.
    let mut ready = stored.clone();
    ready.status = Status::Ready;
    ready.updated_at = "2031-01-01T00:00:00Z".into();
    meta.put(&ready).await.unwrap();
    assert_eq!(meta.claim_source(&Metadata::dropped(ImageId::new(), &key, "\"aaa\"", 10)).await.unwrap(), id);
    assert_eq!(meta.get(&id).await.unwrap().unwrap().source_key.as_deref(), Some(key.as_str()));

    // New bytes at the same name: a new image, now the newest; the old
    // item is untouched.
    let newer = Metadata::dropped(ImageId::new(), &key, "\"bbb\"", 12);
    let id2 = meta.claim_source(&newer).await.unwrap();
    assert_eq!(id2, newer.id);
    assert_ne!(id2, id);
    assert_eq!(meta.by_source(&key).await.unwrap(), Some(id2));
    assert_eq!(meta.get(&id).await.unwrap().unwrap(), ready);

    // Concurrent claims of one object agree on one id.
    let race = format!("race/{}.png", ImageId::new());
    let claims: Vec<Metadata> = (0..6).map(|_| Metadata::dropped(ImageId::new(), &race, "\"ccc\"", 3)).collect();
    let ids = futures_util::future::join_all(claims.iter().map(|c| meta.claim_source(c))).await;
    let ids: Vec<ImageId> = ids.into_iter().map(Result::unwrap).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert_eq!(meta.by_source(&race).await.unwrap(), Some(ids[0]));

    // A name never dropped, and the alias is never listed as pending work.
    assert_eq!(meta.by_source("never/dropped.jpg").await.unwrap(), None);
    let pending = meta.pending(None).await.unwrap();
    assert!(pending.contains(&ids[0]) && pending.contains(&id2));
}

/// A tombstone (`deleted`) is final for good: no later write replaces it,
/// and the same object dropped again is a new image.
pub async fn delete_contract(meta: &dyn MetaStore) {
    let key = format!("gone/{}.jpg", ImageId::new());
    let id = meta.claim_source(&Metadata::dropped(ImageId::new(), &key, "\"ddd\"", 5)).await.unwrap();
    let mut item = meta.get(&id).await.unwrap().unwrap();
    item.status = Status::Deleted;
    item.updated_at = "2031-01-01T00:00:00Z".into();
    meta.put(&item).await.unwrap();
    for (status, updated_at) in [(Status::Ready, "2032-01-01T00:00:00Z"), (Status::Pending, "2032-01-01T00:00:00Z")] {
        let mut late = item.clone();
        late.status = status;
        late.updated_at = updated_at.into();
        assert_eq!(meta.put(&late).await.unwrap(), Stored::Kept, "{status:?} over a tombstone");
        assert_eq!(meta.get(&id).await.unwrap().unwrap().status, Status::Deleted, "{status:?} replaced a tombstone");
    }
    // The tombstone itself may be marked purged, and stays a tombstone.
    let mut purged = item.clone();
    purged.purged = true;
    purged.updated_at = "2031-01-01T00:00:01Z".into();
    assert_eq!(meta.put(&purged).await.unwrap(), Stored::Written);
    let stored = meta.get(&id).await.unwrap().unwrap();
    assert!(stored.purged && stored.status == Status::Deleted, "{stored:?}");
    let again = meta.claim_source(&Metadata::dropped(ImageId::new(), &key, "\"ddd\"", 5)).await.unwrap();
    assert_ne!(again, id, "a deleted image came back");
    assert_eq!(meta.by_source(&key).await.unwrap(), Some(again));
    assert_eq!(meta.claim_source(&Metadata::dropped(ImageId::new(), &key, "\"ddd\"", 5)).await.unwrap(), again);
}

/// `outdated`: the ready images made with another recipe (or none), which
/// `imgpipe reprocess --all` runs; and the recipe survives the store.
pub async fn recipe_contract(meta: &dyn MetaStore) {
    use imgpipe::recipe::Recipe;
    let current = Recipe::parse("r0000cafe").unwrap();
    let older = Recipe::parse("r0000beef").unwrap();
    let item = |status: Status, recipe: Option<Recipe>| {
        let mut m = Metadata::pending(ImageId::new(), declared());
        m.status = status;
        m.recipe = recipe;
        m.updated_at = "2030-01-01T00:00:00Z".into();
        m
    };
    let items = [
        (item(Status::Ready, Some(current)), false),
        (item(Status::Ready, Some(older)), true),
        (item(Status::Ready, None), true),
        (item(Status::Failed, None), false),
        (item(Status::Pending, None), false),
        (item(Status::Deleted, Some(older)), false),
    ];
    for (m, _) in &items {
        meta.put(m).await.unwrap();
    }
    assert_eq!(meta.get(&items[1].0.id).await.unwrap().unwrap().recipe, Some(older), "the recipe is stored");
    let outdated = meta.outdated(current).await.unwrap();
    for (m, listed) in &items {
        assert_eq!(outdated.contains(&m.id), *listed, "{:?} made with {:?}", m.status, m.recipe);
    }
}
