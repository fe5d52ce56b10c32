use super::*;
use crate::options::Role;
use crate::options::signing::Signer;

fn rules() -> SpecRules {
    SpecRules::from_config(&Config::default()).expect("default rules")
}

fn parse(path: &str) -> Result<VariantSpec, UrlError> {
    VariantSpec::parse(path, &rules())
}

fn key(path: &str) -> String {
    parse(path).unwrap().variant_key("copy/")
}

const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn signing_rules(required: bool, only_presets: bool) -> SpecRules {
    let mut r = rules();
    r.signer = Signer::from_hex(&[KEY_HEX.to_string()]).unwrap();
    r.signing_required = required;
    r.only_presets = only_presets;
    r
}

fn signed(path: &str) -> String {
    let sig = Signer::from_hex(&[KEY_HEX.to_string()])
        .unwrap()
        .sign(path)
        .unwrap();
    format!("/s/{sig}{path}")
}

#[test]
fn width_and_key_are_read() {
    let spec = parse("/w/600/images/x.jpg").unwrap();
    assert_eq!(spec.source, "images/x.jpg");
    assert_eq!((spec.width, spec.height), (Some(600), None));
    assert_eq!((spec.fit, spec.gravity), (Fit::Inside, Gravity::Centre));
    assert_eq!(
        (spec.quality, spec.format, spec.negotiated),
        (80, OutputFormat::Original, false)
    );
}

#[test]
fn historical_keys_stay_valid() {
    assert_eq!(key("/w/600/images/x.jpg"), "copy/images/x.jpg/w600_q80");
    let mut r = rules();
    r.png = PngMode::Palette;
    assert_eq!(
        VariantSpec::parse("/w/600/images/x.jpg", &r)
            .unwrap()
            .variant_key("copy/"),
        "copy/images/x.jpg/w600_q80_p"
    );
    r.keep_profile = true;
    assert_eq!(
        VariantSpec::parse("/w/600/images/x.jpg", &r)
            .unwrap()
            .variant_key("copy/"),
        "copy/images/x.jpg/w600_q80_p_icc",
        "a kept profile changes the bytes, so the key"
    );
    assert!(key("/w/300/images/x.jpg").starts_with("copy/images/x.jpg/"));
}

#[test]
fn urls_for_the_same_bytes_share_one_key() {
    let same = |a: &str, b: &str| assert_eq!(key(a), key(b), "{a} vs {b}");
    same("/w/300/dpr/2/a.jpg", "/w/600/a.jpg");
    same("/w/200/dpr/1.5/a.jpg", "/w/300/a.jpg");
    same("/w/300/dpr/1/a.jpg", "/w/300/a.jpg");
    same("/w/300/h/200/fit/inside/a.jpg", "/h/200/w/300/a.jpg");
    same("/w/300/fit/cover/a.jpg", "/w/300/a.jpg");
    same("/w/300/g/north/a.jpg", "/w/300/a.jpg");
    same(
        "/w/300/h/300/fit/fill/g/smart/a.jpg",
        "/w/300/h/300/fit/fill/a.jpg",
    );
    same(
        "/w/300/h/300/fit/cover/g/centre/a.jpg",
        "/w/300/h/300/fit/cover/a.jpg",
    );
    same(
        "/w/300/h/300/fit/cover/g/center/a.jpg",
        "/w/300/h/300/fit/cover/a.jpg",
    );
    same("/w/300/q/80/a.jpg", "/w/300/a.jpg");
    same("/w/300/f/png/q/30/a.jpg", "/w/300/f/png/a.jpg");
    same("/w/300/f/jpg/a.jpg", "/w/300/f/jpeg/a.jpg");
    same("/w/300/bg/FFAA00/a.jpg", "/w/300/bg/ffaa00/a.jpg");
    same("/p/thumb/a.jpg", "/w/300/h/300/fit/cover/a.jpg");
}

#[test]
fn options_that_change_bytes_change_the_key() {
    assert_eq!(
        key("/fit/cover/g/smart/w/300/h/200/bg/ffffff/q/60/f/jpeg/a.jpg"),
        "copy/a.jpg/w300_h200_cover_gsmart_bgffffff_q60.jpg"
    );
    assert_eq!(key("/h/200/a.jpg"), "copy/a.jpg/h200_q80");
    assert_eq!(
        key("/w/300/h/300/fit/contain/g/south/a.jpg"),
        "copy/a.jpg/w300_h300_contain_gsouth_q80"
    );
    assert_eq!(key("/f/avif/a.jpg"), "copy/a.jpg/q80.avif");
    let mut seen = std::collections::HashSet::new();
    for path in [
        "/w/300/a.jpg",
        "/w/300/h/300/a.jpg",
        "/w/300/h/300/fit/cover/a.jpg",
        "/w/300/h/300/fit/contain/a.jpg",
        "/w/300/h/300/fit/fill/a.jpg",
        "/w/300/h/300/fit/cover/g/north/a.jpg",
        "/w/300/q/81/a.jpg",
        "/w/300/f/webp/a.jpg",
        "/w/300/bg/000000/a.jpg",
    ] {
        assert!(seen.insert(key(path)), "{path} shares a key");
    }
}

#[test]
fn auto_negotiates_from_accept_and_says_so() {
    let r = rules();
    let chrome = RequestContext {
        accept: Some("image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"),
        ..RequestContext::default()
    };
    let spec = VariantSpec::from_request("/w/300/f/auto/a.jpg", &chrome, &r).unwrap();
    assert!(matches!(
        spec.format,
        OutputFormat::Negotiated {
            format: Format::Avif,
            animated: Some(Format::WebP)
        }
    ));
    assert!(spec.negotiated);
    assert_eq!(spec.variant_key("copy/"), "copy/a.jpg/w300_q80.auto-avif");
    let curl = RequestContext {
        accept: Some("*/*"),
        ..RequestContext::default()
    };
    let spec = VariantSpec::from_request("/w/300/f/auto/a.jpg", &curl, &r).unwrap();
    assert_eq!(
        (spec.format, spec.negotiated),
        (OutputFormat::Original, true)
    );
    assert_eq!(spec.variant_key("copy/"), key("/w/300/a.jpg"));
    // Without f, only when configured; an explicit format never negotiates.
    assert!(
        !VariantSpec::from_request("/w/300/a.jpg", &chrome, &r)
            .unwrap()
            .negotiated
    );
    let mut auto = rules();
    auto.auto_format = true;
    assert!(
        VariantSpec::from_request("/w/300/a.jpg", &chrome, &auto)
            .unwrap()
            .negotiated
    );
    assert!(
        !VariantSpec::from_request("/w/300/f/png/a.jpg", &chrome, &auto)
            .unwrap()
            .negotiated
    );
}

#[test]
fn dpr_and_sizes_are_limited_after_multiplying() {
    assert!(matches!(
        parse("/w/300/dpr/3.1/a.jpg"),
        Err(UrlError::AboveMax { option: "dpr", .. })
    ));
    assert!(matches!(
        parse("/w/2000/dpr/3/a.jpg"),
        Err(UrlError::AboveMax { option: "w", .. })
    ));
    assert!(matches!(
        parse("/w/4097/a.jpg"),
        Err(UrlError::AboveMax { option: "w", .. })
    ));
    assert!(matches!(
        parse("/h/4097/a.jpg"),
        Err(UrlError::AboveMax { option: "h", .. })
    ));
    let mut r = rules();
    r.max_output_pixels = 1_000_000;
    assert!(matches!(
        VariantSpec::parse("/w/2000/h/2000/a.jpg", &r),
        Err(UrlError::OutputTooLarge { .. })
    ));
    assert!(matches!(
        parse("/w/0/a.jpg"),
        Err(UrlError::BadValue { option: "w", .. })
    ));
}

#[test]
fn the_allow_list_bounds_both_sides_of_unsigned_urls() {
    let mut r = rules();
    r.allowed_sizes = vec![300, 600, 900];
    assert!(VariantSpec::parse("/w/600/a.jpg", &r).is_ok());
    assert!(VariantSpec::parse("/w/300/dpr/2/a.jpg", &r).is_ok());
    assert_eq!(
        VariantSpec::parse("/w/601/a.jpg", &r),
        Err(UrlError::NotAllowed {
            option: "w",
            value: "601".into(),
            allowed: "300, 600, 900".into()
        })
    );
    assert!(matches!(
        VariantSpec::parse("/w/300/h/301/a.jpg", &r),
        Err(UrlError::NotAllowed { option: "h", .. })
    ));
}

#[test]
fn the_allow_lists_bound_quality_dpr_and_background_of_unsigned_urls() {
    let mut config = Config::default();
    config.limits.allowed_qualities = vec![60, 80];
    config.limits.allowed_dprs = vec![1.0, 1.5, 2.0];
    config.limits.allowed_backgrounds = vec!["FFFFFF".into()];
    use crate::options::presets::PresetValue;
    config.presets.insert(
        "soft".into(),
        [
            ("w".to_string(), PresetValue::Int(300)),
            ("q".to_string(), PresetValue::Int(35)),
            ("bg".to_string(), PresetValue::Text("000000".into())),
        ]
        .into(),
    );
    let r = SpecRules::from_config(&config).unwrap();
    for ok in [
        "/w/300/q/60/a.jpg",
        "/w/300/dpr/1.5/a.jpg",
        "/w/300/h/300/fit/contain/bg/ffffff/a.jpg",
        // A preset's values are the configuration's own.
        "/p/soft/a.jpg",
    ] {
        assert!(VariantSpec::parse(ok, &r).is_ok(), "{ok}");
    }
    assert_eq!(
        VariantSpec::parse("/w/300/q/61/a.jpg", &r),
        Err(UrlError::NotAllowed {
            option: "q",
            value: "61".into(),
            allowed: "60, 80".into()
        })
    );
    assert!(matches!(
        VariantSpec::parse("/w/300/dpr/2.5/a.jpg", &r),
        Err(UrlError::NotAllowed { option: "dpr", .. })
    ));
    assert!(matches!(
        VariantSpec::parse("/w/300/h/300/fit/contain/bg/fffffe/a.jpg", &r),
        Err(UrlError::NotAllowed { option: "bg", .. })
    ));
    let mut bad = Config::default();
    bad.limits.allowed_dprs = vec![1.25];
    assert!(SpecRules::from_config(&bad).is_err());
}

#[test]
fn a_background_that_changes_no_byte_has_no_key_part() {
    let key = |path: &str| parse(path).unwrap().variant_key("copy/");
    // Alpha kept and no padding: the colour is never used.
    assert_eq!(
        key("/w/300/f/png/bg/ff0000/a.png"),
        key("/w/300/f/png/a.png")
    );
    assert_eq!(
        key("/w/300/f/webp/bg/ff0000/a.png"),
        key("/w/300/f/webp/a.png")
    );
    // Padding, or alpha flattened (JPEG), or a format not known yet (the original's): it is.
    assert_ne!(
        key("/w/300/h/300/fit/contain/f/png/bg/ff0000/a.png"),
        key("/w/300/h/300/fit/contain/f/png/a.png")
    );
    assert_ne!(
        key("/w/300/f/jpeg/bg/ff0000/a.png"),
        key("/w/300/f/jpeg/a.png")
    );
    assert_ne!(key("/w/300/bg/ff0000/a.png"), key("/w/300/a.png"));
}

#[test]
fn signatures_are_checked_first_and_cannot_be_moved_truncated_or_re_encoded() {
    let r = signing_rules(true, false);
    let good = signed("/w/300/images/a%20b.jpg");
    assert_eq!(
        VariantSpec::parse(&good, &r).unwrap().source,
        "images/a b.jpg"
    );
    // Unsigned, or the signature anywhere but first.
    assert_eq!(
        VariantSpec::parse("/w/300/images/a.jpg", &r),
        Err(UrlError::SignatureRequired)
    );
    let sig = good.split('/').nth(2).unwrap().to_string();
    assert_eq!(
        VariantSpec::parse(&format!("/w/300/s/{sig}/images/a%20b.jpg"), &r),
        Err(UrlError::SignatureRequired)
    );
    let relaxed = signing_rules(false, false);
    assert_eq!(
        VariantSpec::parse(&format!("/w/300/s/{sig}/images/a%20b.jpg"), &relaxed),
        Err(UrlError::SignatureNotFirst)
    );
    // A wrongly signed URL learns nothing of the grammar: 403 however bad its options are.
    for bad in [
        "/w/0/images/a.jpg",
        "/w/300/w/300/images/a.jpg",
        "/q/abc/images/a.jpg",
    ] {
        assert_eq!(
            VariantSpec::parse(&format!("/s/{sig}{bad}"), &r),
            Err(UrlError::SignatureInvalid),
            "{bad}"
        );
    }
    // Truncated, tampered, re-encoded.
    let truncated = good.replacen(&sig, &sig[..sig.len() - 2], 1);
    assert_eq!(
        VariantSpec::parse(&truncated, &r),
        Err(UrlError::SignatureInvalid)
    );
    assert_eq!(
        VariantSpec::parse(&good.replace("/w/300/", "/w/900/"), &r),
        Err(UrlError::SignatureInvalid)
    );
    assert_eq!(
        VariantSpec::parse(&good.replace("a%20b", "a%2520b"), &r),
        Err(UrlError::SignatureInvalid)
    );
    assert_eq!(
        VariantSpec::parse(&good.replace("%20", "%2"), &r),
        Err(UrlError::SignatureInvalid)
    );
    // A valid signature over a bad key is still a bad key: signing never bypasses key rules.
    assert!(matches!(
        VariantSpec::parse(&signed("/w/300/images/../etc/passwd"), &r),
        Err(UrlError::BadKey(_))
    ));
    assert!(matches!(
        VariantSpec::parse(&signed("/w/300/copy/a.jpg/w300_q80"), &r),
        Err(UrlError::UnderCopyPrefix(..))
    ));
    // A signature where no keys are configured verifies against nothing.
    assert_eq!(parse(&good), Err(UrlError::SignatureInvalid));
}

#[test]
fn expiry_is_checked_after_the_signature() {
    let r = signing_rules(true, false);
    let url = signed("/exp/1000/w/300/a.jpg");
    let at = |now| RequestContext {
        now,
        ..RequestContext::default()
    };
    assert!(VariantSpec::from_request(&url, &at(1000), &r).is_ok());
    assert_eq!(
        VariantSpec::from_request(&url, &at(1001), &r),
        Err(UrlError::Expired(1000))
    );
    // A forged expiry is a bad signature, not an expired one.
    assert_eq!(
        VariantSpec::from_request(&url.replace("/exp/1000/", "/exp/9000/"), &at(1001), &r),
        Err(UrlError::SignatureInvalid)
    );
    assert_eq!(
        VariantSpec::from_request(&url, &at(1000), &r)
            .unwrap()
            .variant_key("copy/"),
        "copy/a.jpg/w300_q80",
        "exp is not part of the key"
    );
}

#[test]
fn presets_only_binds_unsigned_urls_and_signed_ones_skip_the_allow_list_but_not_limits() {
    let mut r = signing_rules(false, true);
    r.allowed_sizes = vec![300];
    assert!(VariantSpec::parse("/p/thumb/a.jpg", &r).is_ok());
    assert_eq!(
        VariantSpec::parse("/w/300/a.jpg", &r),
        Err(UrlError::OnlyPresets)
    );
    assert_eq!(
        VariantSpec::parse("/p/thumb/dpr/2/a.jpg", &r),
        Err(UrlError::OnlyPresets)
    );
    assert!(VariantSpec::parse(&signed("/w/1234/a.jpg"), &r).is_ok());
    assert!(matches!(
        VariantSpec::parse(&signed("/w/5000/a.jpg"), &r),
        Err(UrlError::AboveMax { .. })
    ));
    assert!(matches!(
        VariantSpec::parse(&signed("/w/300/dpr/4/a.jpg"), &r),
        Err(UrlError::AboveMax { option: "dpr", .. })
    ));
}

#[test]
fn presets_expand_and_refuse_contradiction() {
    assert_eq!(
        parse("/p/thumb/w/600/a.jpg"),
        Err(UrlError::PresetConflict("w", "thumb".into()))
    );
    assert_eq!(
        parse("/p/nope/a.jpg"),
        Err(UrlError::UnknownPreset("nope".into()))
    );
    assert_eq!(
        key("/p/thumb/dpr/2/a.jpg"),
        "copy/a.jpg/w600_h600_cover_q80"
    );
}

#[test]
fn reduced_is_read_from_the_served_size() {
    let cover = parse("/w/400/h/400/fit/cover/a.jpg").unwrap();
    assert!(!cover.reduced(400, 400));
    assert!(cover.reduced(300, 300));
    let inside = parse("/w/400/h/400/a.jpg").unwrap();
    assert!(!inside.reduced(400, 200));
    assert!(inside.reduced(300, 200));
    let width = parse("/w/400/a.jpg").unwrap();
    assert!(width.reduced(399, 1000));
    assert!(!width.reduced(400, 1));
}

#[test]
fn copy_prefix_is_never_an_original() {
    assert!(matches!(
        parse("/w/600/copy/images/x.jpg/w300_q80"),
        Err(UrlError::UnderCopyPrefix(..))
    ));
    assert!(matches!(
        parse("/w/600/copy"),
        Err(UrlError::UnderCopyPrefix(..))
    ));
    // Percent-encoding cannot smuggle it in either.
    assert!(matches!(
        parse("/w/600/%63opy/x.jpg"),
        Err(UrlError::UnderCopyPrefix(..))
    ));
    assert!(parse("/w/600/copyright/x.jpg").is_ok());
}

#[test]
fn keys_cannot_escape_the_store() {
    for bad in [
        "../etc/passwd",
        "a/../b",
        "a//b",
        "./a",
        "a/%2e%2e/b",
        "a/%2E%2E/b",
        "a\\b",
        "a%5cb",
        "a%00b",
        "%2Fetc/passwd",
        "a/",
    ] {
        assert!(
            matches!(parse(&format!("/w/600/{bad}")), Err(UrlError::BadKey(_))),
            "key {bad:?} must be refused"
        );
    }
    assert_eq!(parse("/w/600/"), Err(UrlError::MissingKey));
    assert_eq!(parse("/w/600"), Err(UrlError::MissingKey));
    assert_eq!(parse("/w"), Err(UrlError::MissingValue("w")));
    assert!(matches!(parse("/w/600/%ff.jpg"), Err(UrlError::BadKey(_))));
}

#[test]
fn source_prefixes_are_enforced() {
    let mut r = rules();
    r.source_prefixes = vec!["images/".into()];
    assert!(VariantSpec::parse("/w/600/images/a.jpg", &r).is_ok());
    assert!(matches!(
        VariantSpec::parse("/w/600/private/a.jpg", &r),
        Err(UrlError::OutsideSources(..))
    ));
}

#[test]
fn percent_encoded_keys_are_decoded() {
    assert_eq!(
        parse("/w/600/images/my%20photo.jpg").unwrap().source,
        "images/my photo.jpg"
    );
}

#[test]
fn options_end_marker_allows_keys_named_like_options() {
    assert_eq!(parse("/w/600/-/w/photo.jpg").unwrap().source, "w/photo.jpg");
    assert_eq!(parse("/w/600/w/1/a.jpg"), Err(UrlError::Repeated("w")));
}

#[test]
fn other_paths_are_not_image_urls() {
    assert_eq!(parse("/favicon.ico"), Err(UrlError::NoRoute));
    assert_eq!(parse("/"), Err(UrlError::NoRoute));
    assert_eq!(parse("/-/w/600/a.jpg"), Err(UrlError::NoRoute));
}

#[test]
fn the_longest_variant_name_fits_the_room_kept_for_it() {
    let longest = VariantSpec {
        source: "a".into(),
        width: Some(u32::MAX),
        height: Some(u32::MAX),
        fit: Fit::Contain,
        gravity: Gravity::NorthWest,
        background: Some(Rgb([255, 255, 255])),
        quality: 100,
        png: PngMode::Palette,
        keep_profile: true,
        keep_credits: true,
        still: true,
        format: OutputFormat::Negotiated {
            format: Format::WebP,
            animated: None,
        },
        negotiated: true,
        expires: None,
    };
    let name = longest.variant_key("copy/")["copy/a".len()..].to_string();
    assert!(
        name.len() < VARIANT_NAME_ROOM,
        "{name}: {} bytes",
        name.len()
    );
    for format in [Format::Avif, Format::Jpeg] {
        let spec = VariantSpec {
            format: OutputFormat::Fixed(format),
            ..longest.clone()
        };
        assert!(spec.variant_key("copy/").len() - "copy/a".len() < VARIANT_NAME_ROOM);
    }
}

#[test]
fn keys_are_bounded_so_every_variant_key_fits_the_store() {
    assert_eq!(max_key_bytes("copy/"), 891);
    let at_limit = format!(
        "{}{}.jpg",
        format!("{}/", "a".repeat(200)).repeat(4),
        "b".repeat(83)
    );
    assert_eq!(at_limit.len(), 891);
    assert_eq!(
        parse(&format!("/w/300/{at_limit}")).unwrap().source,
        at_limit
    );
    assert!(parse(&format!("/w/300/q/100/f/auto/{at_limit}")).is_ok());
    assert_eq!(
        parse(&format!("/w/300/{at_limit}x")),
        Err(UrlError::KeyTooLong {
            what: "key",
            bytes: 892,
            limit: 891
        })
    );
    let segment = "s".repeat(256);
    assert_eq!(
        parse(&format!("/w/300/a/{segment}/b.jpg")),
        Err(UrlError::KeyTooLong {
            what: "key segment",
            bytes: 256,
            limit: 255
        })
    );
    assert!(parse(&format!("/w/300/a/{}/b.jpg", &segment[1..])).is_ok());
}

/// The rules of the table-enumerating tests: the default ones with presets `a` and `b` (the `p` samples)
/// and `thumb`.
fn table_rules() -> SpecRules {
    use crate::options::presets::PresetValue;
    let mut tables = std::collections::BTreeMap::new();
    for (name, width) in [("a", 300), ("b", 400), ("thumb", 300)] {
        let table = std::collections::BTreeMap::from([("w".to_string(), PresetValue::Int(width))]);
        tables.insert(name.to_string(), table);
    }
    let mut r = rules();
    r.presets = Presets::from_config(&tables).unwrap();
    r
}

/// The URL setting `option` to its sample `value`, in the option's sample context.
fn sample_url(option: OptionName, value: &str) -> String {
    let context = option.samples().context;
    let context = if context.is_empty() {
        String::new()
    } else {
        format!("/{context}")
    };
    format!("{context}/{}/{value}/images/x.jpg", option.as_str())
}

#[test]
fn every_option_in_the_table_changes_the_key_when_its_value_changes_unless_it_changes_no_byte() {
    let r = table_rules();
    for &option in OptionName::ALL {
        let [a, b] = option.samples().values;
        let key = |value| {
            let url = sample_url(option, value);
            VariantSpec::parse(&url, &r)
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .variant_key("copy/")
        };
        let (ka, kb) = (key(a), key(b));
        match option.role() {
            Role::Output | Role::Preset => assert_ne!(ka, kb, "{}: {a} and {b}", option.as_str()),
            Role::Validity => assert_eq!(ka, kb, "{}: {a} and {b}", option.as_str()),
        }
        // And setting it at all, to either value, is seen in the key unless it changes no byte.
        let without = {
            let context = option.samples().context;
            (!context.is_empty()).then(|| {
                VariantSpec::parse(&format!("/{context}/images/x.jpg"), &r)
                    .unwrap()
                    .variant_key("copy/")
            })
        };
        if let (Some(without), Role::Output) = (without, option.role()) {
            assert!(
                ka != without || kb != without,
                "{}: no key part",
                option.as_str()
            );
        }
    }
}

#[test]
fn only_presets_refuses_every_option_but_the_preset_on_unsigned_urls() {
    let mut r = table_rules();
    r.only_presets = true;
    assert!(VariantSpec::parse("/p/thumb/images/x.jpg", &r).is_ok());
    for &option in OptionName::ALL {
        if option.role() == Role::Preset {
            continue;
        }
        let value = option.samples().values[0];
        for url in [
            format!("/p/thumb/{}/{value}/images/x.jpg", option.as_str()),
            format!("/{}/{value}/images/x.jpg", option.as_str()),
        ] {
            assert_eq!(
                VariantSpec::parse(&url, &r),
                Err(UrlError::OnlyPresets),
                "{url}"
            );
        }
    }
}
