//! The filter prompt, drawn in the footer's place: the line typed (its tail when it is
//! wider than the window), Tab's candidates, and under it, when the line does not parse,
//! a caret at the parser's column with the reason (the table keeps the last good filter).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::theme::Theme;

const LABEL: &str = "filter: ";

/// How many lines the prompt needs: a second one for the error under the line.
pub(super) fn prompt_height(app: &App) -> u16 {
    match (&app.input, &app.input_error) {
        (Some(_), Some(_)) => 2,
        _ => 1,
    }
}

/// Draws the prompt in `area` (one line, or two with an error).
pub(super) fn render_prompt(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let Some(text) = &app.input else {
        return;
    };
    let width = usize::from(area.width);
    let label_w = LABEL.len();
    // Each character as shown (a pasted control character escaped) and its width.
    let cells: Vec<(String, usize)> = text
        .chars()
        .map(|c| {
            let shown = crate::sanitize::message(&c.to_string()).into_owned();
            let w = Span::raw(shown.as_str()).width();
            (shown, w)
        })
        .collect();
    // Room for the text and the cursor; a long line scrolls so the cursor stays in sight
    // (the end of the line, where typing happens, unless the cursor was moved back).
    let cursor = app.input_cursor.min(cells.len());
    let room = width.saturating_sub(label_w + 1).max(2);
    let upto: usize = cells[..cursor].iter().map(|c| c.1).sum();
    let (mut first, mut shown_w) = (0, upto);
    if upto > room {
        while first < cursor && shown_w > room - 1 {
            shown_w -= cells[first].1;
            first += 1;
        }
    }
    let clipped = first > 0;
    let mut before: String = if clipped { "…".into() } else { String::new() };
    before.extend(cells[first..cursor].iter().map(|c| c.0.as_str()));
    let mut spans = vec![Span::styled(LABEL, theme.key), Span::raw(before)];
    match cells.get(cursor) {
        // On a character: that character shown reversed, the rest after it.
        Some((under, _)) => {
            spans.push(Span::styled(under.clone(), theme.selected));
            let after: String = cells[cursor + 1..].iter().map(|c| c.0.as_str()).collect();
            spans.push(Span::raw(after));
        }
        None => spans.push(Span::styled("█", theme.label)),
    }
    match &app.tab {
        Some(t) if t.completion.candidates.len() > 1 => {
            spans.push(Span::styled("  Tab:", theme.muted));
            for (i, c) in t.completion.candidates.iter().enumerate() {
                let style = if i == t.at {
                    theme.selected
                } else {
                    theme.muted
                };
                spans.push(Span::raw(" "));
                spans.push(Span::styled(
                    crate::sanitize::message(c).into_owned(),
                    style,
                ));
            }
        }
        _ => spans.push(Span::styled(
            "  Enter keeps, Esc restores, Tab completes, ↑↓ history",
            theme.muted,
        )),
    }
    let mut lines = vec![Line::from(spans)];
    if let (Some(err), Some(at)) = (&app.input_error, app.input_error_at) {
        // The caret's column: under the character the parser named (the ellipsis when
        // that one scrolled out of sight, the cursor when it is the end of the line).
        let before: usize = cells
            .iter()
            .enumerate()
            .skip(first)
            .take_while(|(i, _)| *i < at)
            .map(|(_, c)| c.1)
            .sum();
        let x = label_w + usize::from(clipped) + before;
        lines.push(caret_line(err, x, width, theme));
    }
    f.render_widget(Paragraph::new(lines), area);
}

/// `   ^ reason` with the caret at column `x`; when the reason does not fit after it and
/// the caret is right of the middle, the reason goes before it (`reason ^`).
fn caret_line(err: &str, x: usize, width: usize, theme: &Theme) -> Line<'static> {
    let err_w = Span::raw(err).width();
    if x + 2 + err_w <= width || x <= width / 2 {
        return Line::from(vec![
            Span::raw(" ".repeat(x)),
            Span::styled(format!("^ {err}"), theme.critical),
        ]);
    }
    let room = x.saturating_sub(1);
    let mut shown: String = err.chars().take(room).collect();
    if shown.chars().count() < err.chars().count() {
        shown.pop();
        shown.push('…');
    }
    let pad = room.saturating_sub(shown.chars().count());
    Line::from(vec![
        Span::raw(" ".repeat(pad)),
        Span::styled(format!("{shown} ^"), theme.critical),
    ])
}
