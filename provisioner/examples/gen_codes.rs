//! Prints a partners CSV with freshly generated referral codes for the names given.
//! `cargo run --example gen_codes -- "Iron Gym" "Glow Day Spa" > partners.csv`
fn main() {
    println!("name,code,kind");
    for (i, name) in std::env::args().skip(1).enumerate() {
        let code = tapkit_core::code::ReferralCode::generate(
            &name,
            0x0123_4567_u32.wrapping_mul(i as u32 + 1),
        );
        println!("\"{}\",{code},business", name.replace('"', "\"\""));
    }
}
