//! Export of the records a person may see, as CSV and XLSX.

use super::*;

/// The rows of an export: visible records, with the names of restricted ones left out.
pub(super) async fn export_rows(state: &AppState, ctx: &Ctx) -> Result<Vec<Vec<String>>, Response> {
    let all = match call(state, None, Call::List { kind: None }).await {
        Ok(Reply::Views(v)) => v,
        Ok(_) => {
            return Err(message_page(
                ctx.lang,
                Some(ctx),
                StatusCode::INTERNAL_SERVER_ERROR,
                "?",
            ));
        }
        Err(e) => return Err(api_error_page(ctx, e)),
    };
    let mut rows = vec![
        [
            "编号 id",
            "类型 kind",
            "村 villages",
            "登记日期 received",
            "状态 status",
            "类别 category",
            "风险 risk",
            "当事人 parties",
            "摘要 summary",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for v in &all {
        let c = v.common();
        let hidden = c.restricted;
        rows.push(vec![
            v.id().to_string(),
            if v.kind() == Kind::Case {
                "纠纷 case"
            } else {
                "信访 petition"
            }
            .into(),
            c.jurisdictions
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            date(c.received_ms),
            c.status.label_zh().into(),
            c.category.label_zh().into(),
            c.risk.label_zh().into(),
            if hidden {
                "（限制 restricted）".into()
            } else {
                c.parties
                    .iter()
                    .map(|p| p.name.clone())
                    .collect::<Vec<_>>()
                    .join("、")
            },
            if hidden {
                String::new()
            } else {
                c.summary.clone()
            },
        ]);
    }
    Ok(rows)
}

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(super) async fn export_csv(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let rows = match export_rows(&state, &ctx).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    // A byte-order mark so spreadsheet programs read the Chinese as UTF-8.
    let mut out = String::from("\u{feff}");
    for row in rows {
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"guihe.csv\"",
            ),
        ],
        out,
    )
        .into_response()
}

pub(super) async fn export_xlsx(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = match signed_in(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let rows = match export_rows(&state, &ctx).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let _ = sheet.write_string(r as u32, c as u16, cell);
        }
    }
    match book.save_to_buffer() {
        Ok(bytes) => (
            [
                (
                    header::CONTENT_TYPE,
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                ),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"guihe.xlsx\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => message_page(
            ctx.lang,
            Some(&ctx),
            StatusCode::INTERNAL_SERVER_ERROR,
            &e.to_string(),
        ),
    }
}
