//! A port of the column algorithm of Go's `text/tabwriter` (space padding, left aligned), so
//! tables line up exactly like docker's: a cell's width is `max(text + padding, minwidth)`,
//! columns are computed per block of consecutive lines that have that column, and a line
//! without a tab ends every block.

/// Formats `text` like `tabwriter.NewWriter(w, minwidth, _, padding, ' ', 0)` followed by
/// `Flush`.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut pending: Vec<Vec<&str>> = Vec::new();
    let terminated = text.ends_with('\n');
    let body = if terminated {
        &text[..text.len() - 1]
    } else {
        text
    };
    if text.is_empty() {
        return out;
    }
    let lines: Vec<&str> = body.split('\n').collect();
    let last = lines.len() - 1;
    for (i, line) in lines.iter().enumerate() {
        let cells: Vec<&str> = line.split('\t').collect();
        let single = cells.len() == 1;
        pending.push(cells);
        let has_newline = i < last || terminated;
        if has_newline && single {
            Block {
                lines: &pending,
                minwidth,
                padding,
            }
            .emit(&mut out, true);
            pending.clear();
        }
    }
    if !pending.is_empty() {
        Block {
            lines: &pending,
            minwidth,
            padding,
        }
        .emit(&mut out, terminated);
    }
    out
}

struct Block<'a> {
    lines: &'a [Vec<&'a str>],
    minwidth: usize,
    padding: usize,
}

impl Block<'_> {
    /// Formats all lines; `last_newline` says whether the final line ends with a newline.
    fn emit(&self, out: &mut String, last_newline: bool) {
        let mut widths = Vec::new();
        let mut text = String::new();
        self.format(&mut widths, 0, self.lines.len(), &mut text);
        if !last_newline {
            text.pop();
        }
        out.push_str(&text);
    }

    fn format(&self, widths: &mut Vec<usize>, mut line0: usize, line1: usize, out: &mut String) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(widths, line0, this, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(widths, line0, this, out);
            widths.pop();
            line0 = this;
            // Go's loop steps past the line that ended the block: it has no cell here.
            this += 1;
        }
        self.write_lines(widths, line0, line1, out);
    }

    fn write_lines(&self, widths: &[usize], from: usize, to: usize, out: &mut String) {
        for line in &self.lines[from..to] {
            for (j, cell) in line.iter().enumerate() {
                out.push_str(cell);
                if j < widths.len() {
                    let pad = widths[j].saturating_sub(cell.chars().count());
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tabwrite;

    #[test]
    fn docker_table_layout() {
        let text = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n\
                    busybox\tlatest\t76b8ecf5aa0a\t1 second ago\t1.98MB\n\
                    localhost:5000/foo/bar\t1.0\t76b8ecf5aa0a\t1 second ago\t1.98MB\n";
        let want = "REPOSITORY               TAG       IMAGE ID       CREATED        SIZE\n\
                    busybox                  latest    76b8ecf5aa0a   1 second ago   1.98MB\n\
                    localhost:5000/foo/bar   1.0       76b8ecf5aa0a   1 second ago   1.98MB\n";
        assert_eq!(tabwrite(text, 10, 3), want);
    }

    #[test]
    fn empty_table_keeps_header_widths() {
        let text = "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\n";
        assert_eq!(
            tabwrite(text, 10, 3),
            "REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n"
        );
    }

    #[test]
    fn lines_without_tabs_end_blocks() {
        let text = "a\tb\nlonger text\nxxxxxxxxxxxxxxx\ty\n";
        assert_eq!(
            tabwrite(text, 1, 1),
            "a b\nlonger text\nxxxxxxxxxxxxxxx y\n"
        );
    }

    #[test]
    fn version_layout() {
        let text = "Client:\n Version:\t28.2.2\n API version:\t1.41 (downgraded from 1.50)\n";
        assert_eq!(
            tabwrite(text, 20, 1),
            "Client:\n Version:           28.2.2\n API version:       1.41 (downgraded from 1.50)\n"
        );
    }

    #[test]
    fn unterminated_last_line() {
        assert_eq!(tabwrite("a\tb", 1, 1), "a b");
    }
}
