//! `report --png DIR`: the report's SVG charts rendered to PNG in Rust (resvg),
//! with fonts compiled into the binary (`assets/fonts/`: DejaVu Sans for Latin,
//! Droid Sans Fallback cut to GB2312 for Chinese), so Chinese labels render the
//! same everywhere with no system fonts, browser or network.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use resvg::usvg::{self, fontdb};

use super::report::Figure;

/// The bundled fonts, gzip'd (see `assets/fonts/PROVENANCE.md`).
const FONTS: [(&str, &[u8]); 3] = [
    (
        "DejaVuSans-subset.ttf.gz",
        include_bytes!("../../assets/fonts/DejaVuSans-subset.ttf.gz"),
    ),
    (
        "DejaVuSans-Bold-subset.ttf.gz",
        include_bytes!("../../assets/fonts/DejaVuSans-Bold-subset.ttf.gz"),
    ),
    (
        "DroidSansFallback-gb2312.ttf.gz",
        include_bytes!("../../assets/fonts/DroidSansFallback-gb2312.ttf.gz"),
    ),
];

/// Pixels per SVG unit: charts are drawn at twice their size, sharp on slides.
pub const SCALE: f32 = 2.0;

/// The font database, unpacked once.
fn fonts() -> Result<Arc<fontdb::Database>, String> {
    static DB: OnceLock<Result<Arc<fontdb::Database>, String>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = fontdb::Database::new();
        for (name, gz) in FONTS {
            let mut ttf = Vec::new();
            flate2::read::GzDecoder::new(gz)
                .read_to_end(&mut ttf)
                .map_err(|e| format!("the bundled font {name} is damaged: {e}"))?;
            db.load_font_data(ttf);
        }
        db.set_sans_serif_family("DejaVu Sans");
        Ok(Arc::new(db))
    })
    .clone()
}

/// One SVG as PNG bytes at [`SCALE`].
pub fn render(svg: &str) -> Result<Vec<u8>, String> {
    let opt = usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: fonts()?,
        ..Default::default()
    };
    let tree =
        usvg::Tree::from_str(svg, &opt).map_err(|e| format!("cannot read the chart: {e}"))?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * SCALE).ceil() as u32,
        (size.height() * SCALE).ceil() as u32,
    );
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w, h)
        .ok_or_else(|| format!("a chart of {w}x{h} pixels cannot be drawn"))?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| format!("cannot encode the PNG: {e}"))
}

/// Writes every figure as `DIR/{name}.png`, creating `dir`; returns the files.
pub fn write_all(dir: &Path, figures: &[Figure]) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for f in figures {
        let png = render(&f.svg).map_err(|e| format!("{}: {e}", f.name))?;
        let path = dir.join(format!("{}.png", f.name));
        std::fs::write(&path, png).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dark pixels of `text` drawn alone, and the picture.
    fn ink(text: &str, weight: &str) -> (usize, Vec<u8>) {
        let svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" font-family="sans-serif" font-size="24"><text x="8" y="30" font-weight="{weight}">{text}</text></svg>"#
        );
        let img = resvg::tiny_skia::Pixmap::decode_png(&render(&svg).unwrap()).unwrap();
        let dark = img.pixels().iter().filter(|p| p.red() < 128).count();
        (dark, img.data().to_vec())
    }

    #[test]
    fn chinese_and_latin_glyphs_render_from_the_bundled_fonts() {
        // Each character draws ink, and different characters draw differently: a
        // missing font would leave them blank or all the same "no glyph" box.
        for weight in ["normal", "bold"] {
            let (a, pa) = ink("性", weight);
            let (b, pb) = ink("能", weight);
            let (c, pc) = ink("Ab", weight);
            assert!(a > 100 && b > 100 && c > 100, "{weight}: {a} {b} {c}");
            assert!(pa != pb && pa != pc, "{weight}");
        }
        // Bold Latin comes from its own face: more ink than regular.
        assert!(ink("Ab", "bold").0 > ink("Ab", "normal").0);
    }

    #[test]
    fn a_chart_is_written_as_a_png_file() {
        let dir = std::env::temp_dir().join(format!("moonbench-png-{}", std::process::id()));
        let figs = vec![Figure {
            name: "01_x".into(),
            svg: r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5"/>"#.into(),
        }];
        let files = write_all(&dir.join("sub"), &figs).unwrap();
        let bytes = std::fs::read(&files[0]).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{files:?}");
        let img = resvg::tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (20, 10));
        let bad = vec![Figure {
            name: "02_bad".into(),
            svg: "<svg".into(),
        }];
        let err = write_all(&dir, &bad).unwrap_err();
        assert!(err.starts_with("02_bad: cannot read the chart"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
