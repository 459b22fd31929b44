//! One contract suite per port, run against every adapter. The AWS adapters
//! are held to these same functions.

#[path = "../common/aws.rs"]
mod aws;
mod blob;
mod meta;

use imgpipe::meta::sqlite::SqliteMeta;
use imgpipe::signing::UploadSigner;
use imgpipe::store::fs::FsStore;

#[tokio::test]
async fn fs_store_meets_the_blob_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::new(dir.path(), UploadSigner::new(b"k".repeat(32), "http://127.0.0.1:1")).unwrap();
    blob::contract(&store).await;
    // Folder-specific: no stray temporary files are left behind.
    let leftovers: Vec<_> = walk(dir.path()).into_iter().filter(|p| p.contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn sqlite_meta_meets_the_meta_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMeta::open(dir.path()).unwrap();
    meta::contract(&meta).await;
    meta::drop_in_contract(&meta).await;
    meta::delete_contract(&meta).await;
    meta::recipe_contract(&meta).await;
    // Durable: a second handle on the same file sees the items.
    drop(meta);
    let again = SqliteMeta::open(dir.path()).unwrap();
    assert!(!again.pending(None).await.unwrap().is_empty(), "pending items survive a reopen");
}

#[tokio::test]
async fn s3_store_meets_the_blob_store_contract() {
    let Some(endpoint) = aws::moto() else { return };
    let clients = aws::clients(&endpoint);
    let bucket = aws::unique("contract");
    aws::create_bucket(&clients, &bucket).await;
    let store = imgpipe::store::s3::S3Store::new(clients.s3.clone(), &bucket);
    blob::contract(&store).await;
    // S3-specific: the headers are the object's own, as CloudFront sees them.
    let key = imgpipe::keys::Key::parse_stored(&format!("img/{}/webp", imgpipe::keys::ImageId::new())).unwrap();
    store.put(&key, bytes::Bytes::from_static(b"x"), "image/webp", imgpipe::store::IMMUTABLE).await.unwrap();
    let head = clients.s3.head_object().bucket(&bucket).key(key.as_str()).send().await.unwrap();
    assert_eq!(head.content_type(), Some("image/webp"));
    assert_eq!(head.cache_control(), Some(imgpipe::store::IMMUTABLE));
    // Renders carry the tag a lifecycle rule can expire them by; variants do not.
    let id = imgpipe::keys::ImageId::new();
    let render = imgpipe::keys::Key::parse_stored(&format!("img/{id}/{}/webp/w=64", crate::recipe())).unwrap();
    let variant = imgpipe::keys::Key::parse_stored(&format!("img/{id}/{}/webp", crate::recipe())).unwrap();
    for k in [&render, &variant] {
        store.put(k, bytes::Bytes::from_static(b"x"), "image/webp", imgpipe::store::IMMUTABLE).await.unwrap();
    }
    let tags = |key: String| {
        let (s3, bucket) = (clients.s3.clone(), bucket.clone());
        async move {
            let out = s3.get_object_tagging().bucket(bucket).key(key).send().await.unwrap();
            out.tag_set().iter().map(|t| format!("{}={}", t.key(), t.value())).collect::<Vec<_>>()
        }
    };
    assert_eq!(tags(render.to_string()).await, vec![imgpipe::store::s3::RENDER_TAG.to_string()]);
    assert!(tags(variant.to_string()).await.is_empty());
    // A bucket that does not exist is an error, not "no object".
    let gone = imgpipe::store::s3::S3Store::new(clients.s3.clone(), &aws::unique("missing"));
    assert!(gone.ping().await.is_err());
}

#[tokio::test]
async fn dynamo_meta_meets_the_meta_store_contract() {
    let Some(endpoint) = aws::moto() else { return };
    let clients = aws::clients(&endpoint);
    let table = aws::unique("contract");
    aws::create_table(&clients, &table).await;
    let meta = imgpipe::meta::dynamo::DynamoMeta::new(clients.dynamodb.clone(), &table);
    meta::contract(&meta).await;
    meta::drop_in_contract(&meta).await;
    meta::delete_contract(&meta).await;
    meta::recipe_contract(&meta).await;
    // The item is the metadata document in native attributes.
    let id = imgpipe::keys::ImageId::new();
    let item = imgpipe::meta::Metadata::pending(
        id,
        imgpipe::meta::Declared { content_type: "image/png".into(), content_length: 7 },
    );
    meta.put(&item).await.unwrap();
    let raw = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.to_string()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(raw["status"].as_s().unwrap(), "pending");
    assert_eq!(raw["declared"].as_m().unwrap()["content_length"].as_n().unwrap(), "7");
    // A table that does not exist is an error, not "no item".
    let gone = imgpipe::meta::dynamo::DynamoMeta::new(clients.dynamodb.clone(), &aws::unique("missing"));
    assert!(gone.get(&id).await.is_err());
}

use imgpipe::meta::MetaStore;
use imgpipe::store::BlobStore;

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

/// The recipe version of the default settings, which every test runs with:
/// the segment after the id in variant keys and URLs.
pub fn recipe() -> imgpipe::recipe::Recipe {
    imgpipe::engine::Engine::default().recipe()
}
