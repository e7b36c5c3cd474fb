fn main() {
    let text = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    #[expect(clippy::print_stdout)]
    { println!("{:?}", boulder::yaml::parse(&text)); }
}
