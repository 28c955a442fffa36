//! Prints a partners CSV with freshly generated referral codes for the names given.
//! `cargo run --example gen_codes -- "Iron Gym" "Glow Day Spa" > partners.csv`
//! `cargo run --example gen_codes -- --count 100000 > partners.csv` names them
//! "Partner Business 1" … (too many names for a command line; the print bench uses it).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Box<dyn Iterator<Item = String>> = match args.as_slice() {
        [flag, n] if flag == "--count" => {
            let n: usize = n.parse().unwrap_or_else(|_| {
                eprintln!("--count takes a number of partners, not {n:?}");
                std::process::exit(2)
            });
            Box::new((1..=n).map(|i| format!("Partner Business {i}")))
        }
        _ => Box::new(args.into_iter()),
    };
    println!("name,code,kind");
    for (i, name) in names.enumerate() {
        let code = tapkit_core::code::ReferralCode::generate(
            &name,
            0x0123_4567_u32.wrapping_mul(i as u32 + 1),
        );
        println!("\"{}\",{code},business", name.replace('"', "\"\""));
    }
}
