fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = boulder::container::dispatch(&args) {
        std::process::exit(code);
    }
    let root = tempfile::tempdir().unwrap();
    boulder::container::prepare_host_style_root(root.path(), false).unwrap();
    let spec = boulder::container::ContainerSpec {
        rootfs: root.path().to_path_buf(),
        binds: vec![boulder::container::Bind { source: "/usr".into(), target: "/usr".into(), read_only: true }],
        networking: false,
        workdir: "/".into(),
        command: vec!["/usr/bin/bash".into(), "-c".into(), args[1].clone()],
        env: vec![("PATH".into(), "/usr/bin:/usr/sbin".into())],
    };
    let code = boulder::container::run(&std::env::current_exe().unwrap(), &spec, |line| {
        #[expect(clippy::print_stdout)]
        { println!("| {line}"); }
    }).unwrap();
    #[expect(clippy::print_stdout)]
    { println!("exit {code}"); }
}
