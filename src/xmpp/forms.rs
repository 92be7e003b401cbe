//! XEP-0004: Data Forms, through xmpp-parsers' `data_forms` types, plus what
//! that crate leaves out: a submitted field's values by name, result tables
//! (§3.4) and the exact shape we have always sent.
//!
//! Build a [`DataForm`] and send [`to_element`]; read a form a peer sent
//! with `DataForm::try_from(element)` and look fields up with [`values`] or
//! [`first_value`].

use super::ns;
use minidom::{Element, Node};
pub use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};

/// A field with a label, as a form to fill in shows it.
pub fn field(var: &str, kind: FieldType, label: &str) -> Field {
    Field {
        label: Some(label.to_owned()),
        ..Field::new(var, kind)
    }
}

/// The `<x xmlns='jabber:x:data'/>` of `form`.
///
/// xmpp-parsers leaves the type of a text-single field implicit (it is the
/// default) and writes options before values; a form to fill in keeps its
/// explicit types (XEP-0004 §3.2: each field SHOULD have one) and every field
/// the order of the XEP's schema, as we have always sent them.
pub fn to_element(form: DataForm) -> Element {
    let fill_in = form.type_ == DataFormType::Form;
    // xso's conversion panics only on a value without a text form; a data
    // form holds nothing but strings and closed enums.
    let mut x = Element::from(form);
    for field in x.children_mut().filter(|c| c.is("field", ns::DATA_FORMS)) {
        if fill_in {
            explicit_type(field);
        }
        schema_order(field);
    }
    x
}

/// A result form with a table (XEP-0004 §3.4), which xmpp-parsers does not
/// model: the `columns` in `<reported/>` (with their types), then one
/// `<item/>` per row, whose fields carry only var and values.
pub fn with_table(form: DataForm, columns: Vec<Field>, rows: Vec<Vec<Field>>) -> Element {
    let mut x = to_element(form);
    let mut reported = Element::bare("reported", ns::DATA_FORMS);
    for column in columns {
        let mut field = Element::from(column);
        explicit_type(&mut field);
        reported.append_child(field);
    }
    x.append_child(reported);
    for row in rows {
        let mut item = Element::bare("item", ns::DATA_FORMS);
        for cell in row {
            item.append_child(Element::from(cell));
        }
        x.append_child(item);
    }
    x
}

/// The values of the field named `var`, or None when the form has no such field.
pub fn values<'a>(form: &'a DataForm, var: &str) -> Option<&'a [String]> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .map(|f| f.values.as_slice())
}

/// The first value of the field named `var`: the value of a single-value field.
pub fn first_value<'a>(form: &'a DataForm, var: &str) -> Option<&'a str> {
    values(form, var)?.first().map(String::as_str)
}

fn explicit_type(field: &mut Element) {
    if field.attr("type").is_none() {
        super::stanza::set_attr(field, "type", "text-single");
    }
}

/// XEP-0004 §10's sequence: desc, required, values, options, then the rest.
fn schema_order(field: &mut Element) {
    let rank = |node: &Node| match node {
        Node::Element(e) if e.ns() == ns::DATA_FORMS => match e.name() {
            "desc" => 0,
            "required" => 1,
            "value" => 2,
            "option" => 3,
            _ => 4,
        },
        _ => 4,
    };
    let mut nodes = field.take_nodes();
    nodes.sort_by_key(rank);
    for node in nodes {
        field.append_node(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(el: &Element) -> String {
        String::from(el)
    }

    /// XEP-0004 Example 2's shape: title, instructions, FORM_TYPE first,
    /// explicit types, values before options.
    #[test]
    fn form_to_fill_in() {
        let mut form = DataForm::new(
            DataFormType::Form,
            "jabber:bot",
            vec![
                Field {
                    required: true,
                    ..field("botname", FieldType::TextSingle, "The name of your bot")
                }
                .with_value("Botty"),
                Field {
                    options: vec![
                        Option_ {
                            label: Some("Contests".into()),
                            value: "contests".into(),
                        },
                        Option_ {
                            label: Some("News".into()),
                            value: "news".into(),
                        },
                    ],
                    ..field("features", FieldType::ListMulti, "Features")
                }
                .with_value("news"),
            ],
        );
        form.title = Some("Bot Configuration".into());
        form.instructions = Some("Fill out this form".into());
        assert_eq!(
            xml(&to_element(form)),
            "<x xmlns='jabber:x:data' type='form'><title>Bot Configuration</title>\
             <instructions>Fill out this form</instructions>\
             <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>\
             <field label='The name of your bot' type='text-single' var='botname'>\
             <required/><value>Botty</value></field>\
             <field label='Features' type='list-multi' var='features'><value>news</value>\
             <option label='Contests'><value>contests</value></option>\
             <option label='News'><value>news</value></option></field></x>"
        );
    }

    /// Results keep text-single implicit, as they always were.
    #[test]
    fn result_table() {
        let x = with_table(
            DataForm::new(DataFormType::Result_, "jabber:iq:search", Vec::new()),
            vec![
                field("jid", FieldType::JidSingle, "JID"),
                field("nick", FieldType::TextSingle, "Nickname"),
            ],
            vec![vec![
                Field::text_single("jid", "juliet@capulet.com"),
                Field::text_single("nick", "Juliet"),
            ]],
        );
        assert_eq!(
            xml(&x),
            "<x xmlns='jabber:x:data' type='result'>\
             <field type='hidden' var='FORM_TYPE'><value>jabber:iq:search</value></field>\
             <reported><field label='JID' type='jid-single' var='jid'/>\
             <field label='Nickname' type='text-single' var='nick'/></reported>\
             <item><field var='jid'><value>juliet@capulet.com</value></field>\
             <field var='nick'><value>Juliet</value></field></item></x>"
        );
    }

    /// XEP-0004 Example 3's shape, submitted: fields by name.
    #[test]
    fn reads_submitted_values() {
        let x: Element = "<x xmlns='jabber:x:data' type='submit'>\
              <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>\
              <field var='botname'><value>The Jabber Google Bot</value></field>\
              <field var='description'><value>line one</value><value>line two</value></field>\
              <field var='empty'/></x>"
            .parse()
            .expect("test XML is well-formed");
        let form = DataForm::try_from(x).expect("a valid form");
        assert_eq!(first_value(&form, "botname"), Some("The Jabber Google Bot"));
        assert_eq!(
            values(&form, "description"),
            Some(&["line one".to_owned(), "line two".to_owned()][..])
        );
        assert_eq!(values(&form, "empty"), Some(&[][..]));
        assert_eq!(first_value(&form, "empty"), None);
        assert_eq!(values(&form, "missing"), None);
    }

    #[test]
    fn refuses_what_is_no_data_form() {
        for bad in [
            "<x xmlns='jabber:x:data'/>",
            "<x xmlns='jabber:x:data' type='submit'><field><value>v</value></field></x>",
        ] {
            let x: Element = bad.parse().expect("test XML is well-formed");
            assert!(DataForm::try_from(x).is_err(), "{bad}");
        }
    }
}
