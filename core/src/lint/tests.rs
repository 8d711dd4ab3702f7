//! The lint as a whole: levels from the project file over the rules' defaults. Each rule's own
//! tests are in its file under [`super::rules`]; the database-backed figures are in the
//! scenarios (bins/tests).

use super::testing::*;
use std::path::Path;

#[test]
fn levels_from_the_config_apply() {
    let cfg = LintConfig::from_toml(
        "[lint]\nbackfill-with-ddl = \"off\"\nmissing-down = \"error\"\n",
        Path::new("retort.toml"),
    )
    .unwrap();
    let s = script(
        "001",
        "",
        &format!(
            "{CHUNKS}\nALTER TABLE chunks ADD COLUMN lang text;\nUPDATE chunks SET lang = 'en';"
        ),
        None,
    );
    let (f, _) = lint_script(&s, &mut Model::default(), None, &cfg, true);
    assert!(!rules(&f).contains(&"backfill-with-ddl"), "{f:?}");
    assert_eq!(
        f.iter().find(|f| f.rule == "missing-down").unwrap().level,
        Level::Error
    );
}
