mod common;
use common::{Server, client};

#[tokio::test]
async fn login_and_message_self() {
    let server = Server::start();
    server.add_user("alice@localhost", "secret");
    let mut c = client::login(&server, "alice@localhost", "secret", "r1").await;
    c.send("<message to='alice@localhost/r1' type='chat' id='m1'><body>hi</body></message>")
        .await;
    let m = c.expect("</message>").await;
    assert!(m.contains("<body>hi</body>"), "{m}");
}
