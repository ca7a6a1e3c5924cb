//! The quoting check that runs before the csv reader sees a file: RFC 4180 quoting, strictly,
//! because the csv crate reads a quote that never closes, or text after a closing quote,
//! without complaint.

use super::error::CsvError;

/// Checks the file's quoting before the csv reader sees it, because that reader is lenient
/// where an HR export must not be: it reads a quote that never closes as running to the end of
/// the file (a file cut off inside the last column looks complete, and an unmatched quote in
/// one row swallows the rows after it), and it joins text after a closing quote to the value.
/// Here, as in RFC 4180, a quote opens a value only as the value's first character; inside,
/// `""` is a quote; after the closing quote only spaces, the delimiter or the end of the line
/// may follow. A quote inside an unquoted value is an ordinary character.
///
/// Two stray quotes can still pair up into a valid quoted value that swallows the rows between
/// them, so a quoted value that runs over a line holding a whole row's worth of delimiters (as
/// many as the header has, less one) is refused too: a note spanning lines rarely looks like a
/// row, and swallowed people always do. Errors name the line and column where the value starts.
/// Lines end at LF, CRLF or a lone CR, as the csv reader's rows do.
pub(super) fn check_quoting(file: &str, bytes: &[u8], delimiter: u8) -> Result<(), CsvError> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        FieldStart,
        Unquoted,
        Quoted,
        AfterQuote,
    }
    let (mut state, mut line, mut column) = (State::FieldStart, 1u64, 1usize);
    let mut cell_line = 1u64;
    // The header's field count, once its record has ended; and, inside a quoted value that
    // has crossed a line break, the delimiters on its current line.
    let (mut header_fields, mut row_has_text) = (None::<usize>, false);
    let mut inner_delimiters: Option<usize> = None;
    let mut iter = bytes.iter().copied().peekable();
    while let Some(byte) = iter.next() {
        let ends_record = byte == b'\n' || byte == b'\r';
        let ends_line = byte == b'\n' || (byte == b'\r' && iter.peek() != Some(&b'\n'));
        state = match (state, byte) {
            (State::Quoted, b'"') if iter.peek() == Some(&b'"') => {
                iter.next();
                State::Quoted
            }
            (State::Quoted, b'"') => State::AfterQuote,
            (State::Quoted, _) => {
                if ends_line {
                    inner_delimiters = Some(0);
                } else if byte == delimiter
                    && let Some(count) = inner_delimiters.as_mut()
                {
                    *count += 1;
                    if header_fields.is_some_and(|n| *count >= (n - 1).max(2)) {
                        return Err(CsvError::RowsInsideQuotes {
                            file: file.to_string(),
                            line: cell_line,
                            column,
                            row_line: line,
                        });
                    }
                }
                State::Quoted
            }
            (State::FieldStart, b'"') => {
                cell_line = line;
                inner_delimiters = None;
                State::Quoted
            }
            (State::AfterQuote, b' ' | b'\t') => State::AfterQuote,
            (State::AfterQuote, _) if byte != delimiter && !ends_record => {
                return Err(CsvError::TextAfterQuote {
                    file: file.to_string(),
                    line: cell_line,
                    column,
                });
            }
            (_, _) if byte == delimiter => {
                column += 1;
                State::FieldStart
            }
            (_, _) if ends_record => {
                if row_has_text && header_fields.is_none() {
                    header_fields = Some(column);
                }
                (column, row_has_text) = (1, false);
                State::FieldStart
            }
            (_, _) => State::Unquoted,
        };
        if !ends_record && byte != delimiter && !byte.is_ascii_whitespace() {
            row_has_text = true;
        }
        if ends_line {
            line += 1;
        }
    }
    if state == State::Quoted {
        return Err(CsvError::UnclosedQuote {
            file: file.to_string(),
            line: cell_line,
            column,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::connectors::csv::test_support::{error_text, settings};
    use crate::connectors::csv::{CsvError, parse};
    use crate::domain::{attribute, non_empty};

    #[test]
    fn quoted_fields_keep_delimiters_quotes_and_line_breaks() {
        let text = "employee_id,email,display_name,job_title\n\
                    E1,a@example.org,\"Dijkstra, Saar\",\"Zorg \"\"plus\"\"\nnacht\"\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].display_name.as_deref(), Some("Dijkstra, Saar"));
        assert_eq!(records[0].job_title.as_deref(), Some("Zorg \"plus\" nacht"));
    }

    #[test]
    fn stray_quote_that_keeps_the_field_count_fails_at_its_line() {
        let text = "employee_id,email,last_name,department\n\
                    E1,a@example.org,\"Smit,Zorg\n\
                    E2,b@example.org,Jansen,Zorg\n\
                    E3,c@example.org,Bakker,Zorg\n";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 2, column 3:"), "{error}");
        assert!(error.contains("runs over line 3"), "{error}");
    }

    #[test]
    fn file_cut_inside_the_last_column_of_the_last_row_fails() {
        let text = "employee_id,email,department\n\
                    E1,a@example.org,\"Engineering\"\n\
                    E2,b@example.org,\"Eng";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 3, column 3:"), "{error}");
        assert!(error.contains("never closes"), "{error}");
    }

    #[test]
    fn text_after_a_closing_quote_fails_at_the_line_where_the_value_starts() {
        let text = "employee_id,email,last_name\n\
                    E1,a@example.org,\"Smit\nde\" Vries\n";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 2, column 3:"), "{error}");
        assert!(error.contains("text follows the closing quote"), "{error}");
    }

    #[test]
    fn two_stray_quotes_that_pair_up_over_whole_rows_fail_where_the_first_opens() {
        let text = "employee_id,email,first_name,last_name\n\
                    E1,a@example.org,Ann,\"Smit\n\
                    E2,b@example.org,Bob,Bakker\n\
                    E3,c@example.org,Cor,de Vries\"\n\
                    E4,d@example.org,Dan,Dekker\n";

        let error = error_text(parse("hr.csv", text.as_bytes(), &settings()));

        assert!(error.starts_with("hr.csv line 2, column 4:"), "{error}");
        assert!(error.contains("runs over line 3"), "{error}");
    }

    #[test]
    fn a_quoted_note_over_several_lines_is_one_value() {
        let text = "employee_id,email,first_name,notes\n\
                    E1,a@example.org,Ann,\"Works Mondays,\nTuesdays\nand, on call, Fridays\"\n\
                    E2,b@example.org,Bob,\n";
        let mut settings = settings();
        settings.attributes = vec!["notes".to_string()];

        let records = parse("hr.csv", text.as_bytes(), &settings).unwrap();

        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0].attributes["notes"],
            "Works Mondays,\nTuesdays\nand, on call, Fridays"
        );
    }

    #[test]
    fn lines_ending_in_a_lone_cr_are_counted() {
        let unclosed =
            "employee_id,email,last_name\rE1,a@example.org,Smit\rE2,b@example.org,\"Bos\r";
        let short = "employee_id,email,last_name\rE1,a@example.org,Smit\rE2,b@example.org\r";

        let unclosed = error_text(parse("hr.csv", unclosed.as_bytes(), &settings()));
        let short = error_text(parse("hr.csv", short.as_bytes(), &settings()));

        assert!(
            unclosed.starts_with("hr.csv line 3, column 3:"),
            "{unclosed}"
        );
        assert!(short.starts_with("hr.csv line 3:"), "{short}");
    }

    #[test]
    fn quotes_inside_unquoted_values_and_spaces_after_a_closing_quote_are_accepted() {
        let text = "employee_id;email;job_title;last_name\r\n\
                    E1;a@example.org;Size 5\"11;\"Smit\" \r\n";

        let records = parse("hr.csv", text.as_bytes(), &settings()).unwrap();

        assert_eq!(records[0].job_title.as_deref(), Some("Size 5\"11"));
        assert_eq!(records[0].last_name.as_deref(), Some("Smit"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn any_text_a_spreadsheet_writes_is_read_back_as_one_clean_record_per_row(
            cells in proptest::collection::vec(
                (
                    "[A-Za-z0-9]{1,8}",
                    proptest::prop_oneof![
                        proptest::prelude::any::<String>(),
                        "[ \t\r\n\",;\x00\u{202E}\u{2028}a-zé]{0,30}",
                    ],
                    "[ \t\r\n\",;a-z]{0,30}",
                ),
                1..8,
            )
        ) {
            let mut writer = ::csv::Writer::from_writer(Vec::new());
            writer.write_record(["employee_id", "email", "first_name", "notes"]).unwrap();
            for (i, (id, name, note)) in cells.iter().enumerate() {
                writer.write_record([format!("{id}-{i}").as_str(), "", name, note]).unwrap();
            }
            let bytes = writer.into_inner().unwrap();
            let mut settings = settings();
            settings.delimiter = Some(',');
            settings.attributes = vec!["notes".to_string()];

            let records = parse("hr.csv", &bytes, &settings);

            // A value whose later line holds a row's worth of commas (three, with four
            // columns) is refused as rows swallowed by a stray quote; anything else is read.
            let looks_like_rows = cells.iter().any(|(_, name, note)| {
                [name, note].iter().any(|cell| {
                    cell.split(['\n', '\r']).skip(1).any(|line| line.matches(',').count() >= 3)
                })
            });
            if looks_like_rows {
                proptest::prop_assert!(
                    matches!(records, Err(CsvError::RowsInsideQuotes { .. }) | Ok(_)),
                    "{:?}",
                    records
                );
                return Ok(());
            }
            let records = records.unwrap();
            proptest::prop_assert_eq!(records.len(), cells.len());
            for (record, (_, name, note)) in records.iter().zip(&cells) {
                proptest::prop_assert_eq!(record.first_name.clone(), non_empty(name));
                proptest::prop_assert_eq!(record.attributes.get("notes").cloned(), attribute(note));
                proptest::prop_assert_eq!(&record.clone().normalised(), record);
            }
        }
    }
}
