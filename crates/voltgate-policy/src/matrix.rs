//! The role × permission table as plain text, for `voltgate policy matrix` and for review
//! against the seed's own tables.

use std::fmt::Write;

use crate::preset::Preset;

const GRANTED: &str = "✓";
const NOT_GRANTED: &str = "·";
const COLUMN_GAP: usize = 2;

fn pad(out: &mut String, text: &str, width: usize) {
    out.push_str(text);
    let used = text.chars().count();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
}

pub(crate) fn render(preset: &Preset) -> String {
    let data = &preset.data;
    let label_width = data
        .permissions
        .iter()
        .map(|permission| permission.id.chars().count())
        .chain(std::iter::once("permission".len()))
        .max()
        .unwrap_or(0)
        + COLUMN_GAP;
    let column_widths: Vec<usize> = data
        .roles
        .iter()
        .map(|role| role.id.chars().count() + usize::from(role.admin) + COLUMN_GAP)
        .collect();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} roles × {} permissions ({GRANTED} granted, {NOT_GRANTED} not granted; admin roles hold every permission)",
        data.id,
        data.roles.len(),
        data.permissions.len(),
    );
    pad(&mut out, "permission", label_width);
    for (role, &width) in data.roles.iter().zip(&column_widths) {
        let header = if role.admin {
            format!("{}*", role.id)
        } else {
            role.id.clone()
        };
        pad(&mut out, &header, width);
    }
    trim_line_end(&mut out);
    out.push('\n');

    let mut current_group: Option<&str> = None;
    for (index, permission) in data.permissions.iter().enumerate() {
        let group = permission.group.as_deref();
        if group.is_some() && group != current_group {
            let _ = writeln!(out, "[{}]", group.unwrap_or_default());
        }
        current_group = group;
        pad(&mut out, &permission.id, label_width);
        for (role, &width) in data.compiled_roles.iter().zip(&column_widths) {
            let mark = if role.permissions.contains(index) {
                GRANTED
            } else {
                NOT_GRANTED
            };
            pad(&mut out, mark, width);
        }
        if let Some(module) = &permission.module {
            let _ = write!(out, "module: {module}");
        }
        trim_line_end(&mut out);
        out.push('\n');
    }
    if data.roles.iter().any(|role| role.admin) {
        out.push_str("* admin role\n");
    }
    out
}

fn trim_line_end(out: &mut String) {
    let trimmed = out.trim_end_matches(' ').len();
    out.truncate(trimmed);
}
