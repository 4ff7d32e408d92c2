mod common;
use common::*;
use guihe_protocol::event::{Body, Note};
use guihe_protocol::record::Record;
use guihe_protocol::view::View;
use guihe_protocol::workflow::Status;

#[test]
fn smoke() {
    let mut o = Office::new(1, "tan.dm");
    let mut r = o.create(new_case(&["500240101201"]));
    o.record(&mut r, Body::Accept(Note::default())).unwrap();
    let bytes = r.save();
    let back = Record::load(&bytes).unwrap();
    let v = back.view(&o.rules).unwrap();
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
    match v {
        View::Case(c) => assert_eq!(c.common.status, Status::Accepted),
        _ => panic!(),
    }
    println!("{} bytes", bytes.len());
}
